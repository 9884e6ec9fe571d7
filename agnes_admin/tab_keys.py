"""Enter or Space on a tab's title opens the tab, as a click does.

Bokeh's tab titles take focus (Tab reaches them) but answer only the mouse: a
keyboard-only admin could reach the titles "Groups", "Grants", "Register a table" or a
table's "Edit" and never open them, and so never reach the controls inside. Here Enter or
Space on a focused title opens its tab; focus stays on the title, which is moved ahead of
the tabs' content in the page's order (Bokeh puts it after), so the next Tab goes into
the tab just opened.
"""

from __future__ import annotations

from typing import Any

# Run by the browser once the page is ready (a callback the page's own scripts compile;
# no inline script). Listening on the document sees keys from inside every shadow root.
TAB_KEYS_JS = """
document.addEventListener('keydown', (event) => {
  const title = event.composedPath()[0];
  if (!(title instanceof HTMLElement) || !title.classList.contains('bk-tab')) return;
  if (event.key !== 'Enter' && event.key !== ' ') return;
  event.preventDefault();
  const root = title.getRootNode();
  const index = Array.prototype.indexOf.call(title.parentElement.children, title);
  // The titles are drawn again when the tab's content arrives from the server: the
  // title is put first and focused each time, until the admin does something else.
  const settle = () => {
    const titles = root.querySelectorAll('.bk-tab');
    const header = titles.length > 0 ? titles[0].closest('.bk-header') : null;
    if (header !== null && header.parentNode === root && root.firstElementChild !== header) {
      root.prepend(header);
    }
    const now = titles[index];
    if (now && root.activeElement !== now) now.focus();
  };
  const watch = new MutationObserver(settle);
  watch.observe(root, {childList: true, subtree: true});
  const stop = () => {
    watch.disconnect();
    document.removeEventListener('mousedown', stop, true);
    document.removeEventListener('keydown', stop, true);
  };
  document.addEventListener('mousedown', stop, true);
  setTimeout(() => document.addEventListener('keydown', stop, true), 0);  // the next key
  setTimeout(stop, 5000);
  title.click();
  settle();
}, true);
"""


def open_tabs_by_keyboard(doc: Any) -> None:
    """Make Enter and Space open a focused tab title in ``doc``'s page."""
    from bokeh.models import CustomJS

    doc.js_on_event("document_ready", CustomJS(code=TAB_KEYS_JS))
