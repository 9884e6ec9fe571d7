"""A button whose action runs once per click, never twice at the same time.

A page's callbacks run on several threads (``mount.PAGE_THREADS``): the two clicks of a
double click ran side by side, so "Add user" added the user and then said "already
exists" beside it, and "Create token" made two tokens. :func:`on_click` drops a click
that arrives while the button's action is still running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def on_click(button: Any, action: Callable[[], object]) -> None:
    """Run ``action`` when ``button`` is clicked, unless its previous run is still going."""
    running = threading.Lock()

    def clicked(_: object) -> None:
        if not running.acquire(blocking=False):
            return  # the same click again (a double click): the first is being handled
        try:
            action()
        finally:
            running.release()

    button.on_click(clicked)


def submit_on_enter(button: Any, *fields: Any) -> None:
    """Enter in one of ``fields`` clicks ``button``, as Enter submits a form in a web page
    (a page of Panel widgets is no HTML form: Enter did nothing, and an admin working from
    the keyboard was left with no way to act). Fields without an Enter event (text areas,
    where Enter is a new line; selects) are left alone; a disabled button stays unclicked."""
    for field in fields:
        if "enter_pressed" in field.param:
            field.param.watch(lambda _: _press(button), "enter_pressed")


def _press(button: Any) -> None:
    if not button.disabled:
        button.clicks += 1
