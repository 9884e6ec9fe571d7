"""The keyboard chooses a row of a table, as a click does.

A table's rows answered only the mouse: a keyboard-only admin reached a table (Tab stops
on it) but could not choose the token to revoke, the user to deactivate or the table whose
history, profile and Edit form show below. Here, with a table focused, the down and up
arrows mark a row (outlined) and Enter or Space chooses it, as clicking it does; in a row
with buttons (a marketplace's Sync and Remove) the right and left arrows mark a button,
and Enter or Space presses it.
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
  const mark = (el) => {
    el.style.outline = '2px solid #2456d3';
    el.style.outlineOffset = '-2px';
  };
  // A row's buttons: its cells that hold no data column (Tabulator names those).
  const buttons = at < 0 ? [] : Array.from(rows[at].querySelectorAll('.tabulator-cell'))
    .filter((cell) => !cell.hasAttribute('tabulator-field') && cell.textContent.trim() !== '');
  const pressed = buttons.findIndex((cell) => cell.classList.contains(current));
  let next;
  if (event.key === 'ArrowDown') next = Math.min(at + 1, rows.length - 1);
  else if (event.key === 'ArrowUp') next = Math.max(at - 1, 0);
  else if ((event.key === 'ArrowRight' || event.key === 'ArrowLeft') && buttons.length > 0) {
    event.preventDefault();
    event.stopPropagation();
    const step = event.key === 'ArrowRight' ? 1 : -1;
    const to = Math.min(Math.max(pressed + step, -1), buttons.length - 1);
    for (const cell of buttons) {
      cell.classList.remove(current);
      cell.style.outline = '';
    }
    if (to >= 0) {
      buttons[to].classList.add(current);
      mark(buttons[to]);
    }
    return;
  } else if ((event.key === 'Enter' || event.key === ' ') && at >= 0) {
    event.preventDefault();
    event.stopPropagation();
    const cell = pressed >= 0 ? buttons[pressed] : rows[at].querySelector('.tabulator-cell');
    (cell || rows[at]).click();
    return;
  } else return;
  event.preventDefault();
  event.stopPropagation();
  for (const row of rows) {
    row.classList.remove(current);
    row.style.outline = '';
    for (const cell of row.querySelectorAll('.' + current)) {
      cell.classList.remove(current);
      cell.style.outline = '';
    }
  }
  rows[next].classList.add(current);
  mark(rows[next]);
  rows[next].scrollIntoView({block: 'nearest'});
}, true);
"""


def choose_rows_by_keyboard(doc: Any) -> None:
    """Make the arrows and Enter choose a row of a focused table in ``doc``'s page."""
    from bokeh.models import CustomJS

    doc.js_on_event("document_ready", CustomJS(args={"current": CURRENT}, code=ROW_KEYS_JS))
