"""Text typed in the admin app reaches the server whole: the browser never cuts it.

Panel's text inputs and text areas tell the browser ``maxlength=5000`` unless told
otherwise, and a browser cuts a longer paste there without a word: a materialized table's
SQL, a description or the agent rails pasted whole were saved cut short, reported as
"Saved.". Here the browser is given no practical limit; every limit is the server's,
which refuses a value too long with a message saying so, and leaves the text in the
field. Imported by the modules that build text widgets, before any is made.
"""

from __future__ import annotations

import panel as pn

UNCAPPED = 2**31 - 1  # the largest maxlength a browser takes: no cut in practice

for _widget in (pn.widgets.TextInput, pn.widgets.TextAreaInput, pn.widgets.PasswordInput):
    _widget.param.max_length.default = UNCAPPED
