"""The keyboard chooses a row of a table, as a click does.

A table's rows answered only the mouse: a keyboard-only admin reached a table (Tab stops
on it) but could not choose the token to revoke, the user to deactivate or the table whose
history, profile and Edit form show below. Here, with a table focused, the down and up
arrows mark a row (outlined) and Enter or Space chooses it, as clicking it does.
"""

from __future__ import annotations

from typing import Any

CURRENT = "agnes-row-current"
# Run by the browser once the page is ready (a callback the page's own scripts compile;
# no inline script). Listening on the document sees keys from inside every shadow root.
ROW_KEYS_JS = """
document.addEventListener('keydown', (event) => {
  const holder = event.composedPath()[0];
  if (!(holder instanceof HTMLElement)) return;
  if (!holder.classList.contains('tabulator-tableholder')) return;
  const rows = Array.from(holder.querySelectorAll('.tabulator-row'));
  if (rows.length === 0) return;
  const at = rows.findIndex((row) => row.classList.contains(current));
  let next;
  if (event.key === 'ArrowDown') next = Math.min(at + 1, rows.length - 1);
  else if (event.key === 'ArrowUp') next = Math.max(at - 1, 0);
  else if ((event.key === 'Enter' || event.key === ' ') && at >= 0) {
    event.preventDefault();
    event.stopPropagation();
    const cell = rows[at].querySelector('.tabulator-cell');
    (cell || rows[at]).click();
    return;
  } else return;
  event.preventDefault();
  event.stopPropagation();
  for (const row of rows) {
    row.classList.remove(current);
    row.style.outline = '';
  }
  rows[next].classList.add(current);
  rows[next].style.outline = '2px solid #2456d3';
  rows[next].style.outlineOffset = '-2px';
  rows[next].scrollIntoView({block: 'nearest'});
}, true);
"""


def choose_rows_by_keyboard(doc: Any) -> None:
    """Make the arrows and Enter choose a row of a focused table in ``doc``'s page."""
    from bokeh.models import CustomJS

    doc.js_on_event("document_ready", CustomJS(args={"current": CURRENT}, code=ROW_KEYS_JS))
