"""The admin pages' thread pool, keeping each page's callbacks in the order they were made.

Panel runs a page's callbacks on a shared thread pool (``mount.PAGE_THREADS``). Before a
click, it hands over the page's pending value changes (text typed, then Tab) and then the
click, as two tasks; on a plain pool they ran side by side, so "Save" could read the value
from before the change and save that. On this pool a task of a page (a Bokeh document)
starts only once every task of that page submitted before it has finished. Clicks alone
do not wait for earlier clicks: a double click's second click still reaches
:func:`agnes_admin.clicks.on_click` while the first runs, which drops it.

Tasks wait outside the pool (one is submitted when the tasks before it are done), so a
page with a long queue holds no thread, and other pages' tasks run meanwhile.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bokeh.document import Document

# Panel's method that runs one browser event (a click) on the pool.
_EVENT_TASK = "_process_bokeh_event"


@dataclass(eq=False)
class _Task:
    doc: Document
    call: Callable[[], Any]
    future: Future[Any]
    is_event: bool
    waiting_for: int = 0
    then: list[_Task] = field(default_factory=list)


def _document_of(fn: Callable[..., Any], args: tuple[Any, ...]) -> Document | None:
    """The page a task belongs to: Panel passes its document first, directly or in a partial."""
    if args and isinstance(args[0], Document):
        return args[0]
    if isinstance(fn, functools.partial) and fn.args and isinstance(fn.args[0], Document):
        return fn.args[0]
    return None


def _is_event(fn: Callable[..., Any]) -> bool:
    return getattr(fn, "__name__", "") == _EVENT_TASK


class SessionOrderedPool(ThreadPoolExecutor):
    """A thread pool on which one page's tasks run in the order submitted (clicks aside)."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="agnes-admin-page")
        self._order = threading.Lock()
        self._unfinished: dict[Document, list[_Task]] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        doc = _document_of(fn, args)
        if doc is None:
            return super().submit(fn, *args, **kwargs)
        task = _Task(
            doc=doc,
            call=functools.partial(fn, *args, **kwargs),
            future=Future(),
            is_event=_is_event(fn),
        )
        with self._order:
            earlier = self._unfinished.setdefault(doc, [])
            for before in earlier:
                if not (task.is_event and before.is_event):
                    before.then.append(task)
                    task.waiting_for += 1
            earlier.append(task)
            ready = task.waiting_for == 0
        if ready:
            self._start(task)
        return task.future

    def waiting(self, doc: Document) -> int:
        """How many of the page's tasks wait for earlier ones (for tests and diagnostics)."""
        with self._order:
            return sum(1 for task in self._unfinished.get(doc, []) if task.waiting_for)

    def _start(self, task: _Task) -> None:
        try:
            super().submit(self._run, task)
        except RuntimeError:  # the pool is shut down (the server is stopping)
            task.future.cancel()
            self._finished(task)

    def _run(self, task: _Task) -> None:
        try:
            if task.future.set_running_or_notify_cancel():
                try:
                    result = task.call()
                except BaseException as exc:  # noqa: BLE001 - handed to the task's future
                    task.future.set_exception(exc)
                else:
                    task.future.set_result(result)
        finally:
            self._finished(task)

    def _finished(self, task: _Task) -> None:
        ready: list[_Task] = []
        with self._order:
            unfinished = self._unfinished.get(task.doc, [])
            if task in unfinished:
                unfinished.remove(task)
            if not unfinished:
                self._unfinished.pop(task.doc, None)
            for after in task.then:
                after.waiting_for -= 1
                if after.waiting_for == 0:
                    ready.append(after)
        for after in ready:
            self._start(after)


def install(threads: int) -> None:
    """Make Panel run page callbacks on a :class:`SessionOrderedPool` of ``threads``."""
    import panel as pn
    from panel.io.state import state

    pn.config.nthreads = threads  # type: ignore[misc]  # Panel's own flags follow this
    plain = state._thread_pool
    if isinstance(plain, SessionOrderedPool):
        return  # a second server in this process shares the first one's
    state._thread_pool = SessionOrderedPool(threads)  # type: ignore[assignment]  # typed None
    if plain is not None:
        plain.shutdown(wait=False)
