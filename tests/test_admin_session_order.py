"""The admin pages' thread pool keeps each page's callbacks in the order they were made.

On Panel's plain pool a click ran beside the value change sent just before it, so "Save"
could read the text from before the change (seen in CI: a pasted text was not refused).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError
from typing import Any

import pytest
from bokeh.document import Document

from agnes_admin.session_order import SessionOrderedPool


@pytest.fixture
def pool() -> Iterator[SessionOrderedPool]:
    made = SessionOrderedPool(2)
    yield made
    made.shutdown(wait=True)


class Page:
    """Tasks shaped as Panel submits them: a value change, and a click (a Bokeh event)."""

    def __init__(self) -> None:
        self.value = "old"
        self.seen: list[str] = []

    def _change_event(self, doc: Document, value: str, gate: threading.Event) -> None:
        gate.wait()
        self.value = value

    def _process_bokeh_event(self, doc: Document, event: Any, gate: threading.Event) -> str:
        gate.wait()
        self.seen.append(self.value)
        return self.value


def test_a_click_waits_for_the_change_sent_before_it_and_other_pages_go_on(
    pool: SessionOrderedPool,
) -> None:
    page, doc = Page(), Document()
    typing = threading.Event()
    opened = threading.Event()
    opened.set()
    change = pool.submit(page._change_event, doc, "new", typing)
    click = pool.submit(page._process_bokeh_event, doc, "click", opened)
    # Another page's task takes the second thread and finishes: on a plain pool the click
    # would have taken that thread first (the queue is in order) and read "old".
    pool.submit(lambda: None).result()
    pool.submit(functools.partial(Page()._change_event, Document(), "x", opened)).result()
    assert not click.done()
    assert pool.waiting(doc) == 1
    typing.set()
    assert click.result() == "new"
    assert change.done()
    assert page.seen == ["new"]
    assert pool.waiting(doc) == 0


def test_a_second_click_runs_beside_the_first_so_a_double_click_can_be_dropped(
    pool: SessionOrderedPool,
) -> None:
    page, doc = Page(), Document()
    first_gate, second_gate = threading.Event(), threading.Event()
    second_gate.set()
    first = pool.submit(page._process_bokeh_event, doc, "click", first_gate)
    second = pool.submit(page._process_bokeh_event, doc, "click", second_gate)
    assert second.result() == "old"  # it ran while the first was still going
    assert not first.done()
    first_gate.set()
    assert first.result() == "old"


def test_a_change_waits_for_the_click_before_it(pool: SessionOrderedPool) -> None:
    """A click reads the values as they were when it was made, not a later keystroke."""
    page, doc = Page(), Document()
    clicking, opened = threading.Event(), threading.Event()
    opened.set()
    click = pool.submit(page._process_bokeh_event, doc, "click", clicking)
    change = pool.submit(page._change_event, doc, "typed after", opened)
    pool.submit(lambda: None).result()
    assert not change.done()
    clicking.set()
    assert click.result() == "old"
    change.result()
    assert page.value == "typed after"


def test_a_failed_task_is_reported_in_its_future_and_the_next_still_runs(
    pool: SessionOrderedPool,
) -> None:
    doc = Document()

    def broken(_: Document) -> None:
        raise ValueError("the callback failed")

    failed = pool.submit(broken, doc)
    after = pool.submit(lambda d: d, doc)
    with pytest.raises(ValueError, match="the callback failed"):
        failed.result()
    assert after.result() is doc
    assert pool.waiting(doc) == 0


def test_tasks_waiting_when_the_pool_shuts_down_are_cancelled_not_lost_in_a_queue() -> None:
    made = SessionOrderedPool(1)
    page, doc = Page(), Document()
    gate, opened = threading.Event(), threading.Event()
    opened.set()
    running = made.submit(page._change_event, doc, "new", gate)
    waiting = made.submit(page._process_bokeh_event, doc, "click", opened)
    made.shutdown(wait=False)
    gate.set()
    running.result()
    with pytest.raises(CancelledError):
        waiting.result()
    assert made.waiting(doc) == 0
    made.shutdown(wait=True)


def test_panel_still_hands_the_pool_a_click_by_this_name() -> None:
    """The pool tells a click from other tasks by Panel's method name: pin it."""
    from panel.reactive import Syncable

    assert callable(Syncable._process_bokeh_event)
    assert callable(Syncable._change_event)
