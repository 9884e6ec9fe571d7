"""Waiting for long work (a sync) without holding one of the admin app's page threads.

Every page's callbacks, a tab opened or a button clicked by any admin, run on the few
threads Panel shares among all pages (``mount.PAGE_THREADS``). A callback that waited
there for a marketplace fetch or a table sync (minutes on a slow source) held one, and
four such waits froze every admin page for everyone until they ended. Such work runs
here instead, on threads of its own, and what it gives is handed back to the page on its
document's next tick.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import panel as pn
from panel.io.state import set_curdoc

T = TypeVar("T")

# Threads that only wait (on a sync the service runs): a full pool delays outcomes shown,
# never a page.
_WAITERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="agnes-admin-wait")


def in_background(work: Callable[[], T], then: Callable[[Future[T]], None]) -> None:
    """Run ``work`` off the page threads, then ``then(its future)`` on the page's document.
    Outside a document (a page driven from Python) both run here, in turn."""
    doc = pn.state.curdoc
    if doc is None:
        done: Future[T] = Future()
        try:
            done.set_result(work())
        except Exception as exc:  # noqa: BLE001 - handed to ``then``, which reports it
            done.set_exception(exc)
        then(done)
        return

    def deliver(finished: Future[T]) -> None:
        def show() -> None:
            with set_curdoc(doc):
                then(finished)

        with contextlib.suppress(Exception):  # the page was closed meanwhile
            doc.add_next_tick_callback(show)

    _WAITERS.submit(work).add_done_callback(deliver)
