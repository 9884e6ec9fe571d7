"""The query watchdog: interrupts fire once past their deadline, released ones never, a
query started after a sleeping thread's deadline is still caught, and released tickets
hold neither their interrupt nor an ever-growing heap."""

from __future__ import annotations

import gc
import threading
import weakref

from agnes_mcp.rails.watchdog import Watchdog

SIGNAL_WAIT = 30.0  # how long a test waits for an interrupt that must come (never hit)


def test_an_interrupt_fires_past_its_deadline_and_its_ticket_is_then_spent() -> None:
    dog, fired = Watchdog(), threading.Event()
    ticket = dog.watch(0.01, fired.set)
    assert fired.wait(SIGNAL_WAIT)
    assert dog.release(ticket) is False  # too late: the caller must not reuse the cursor


def test_a_released_ticket_never_fires() -> None:
    dog, released, later = Watchdog(), threading.Event(), threading.Event()
    ticket = dog.watch(0.01, released.set)
    assert dog.release(ticket) is True
    dog.watch(0.05, later.set)  # its deadline is after the released one's
    assert later.wait(SIGNAL_WAIT)
    assert not released.is_set()


def test_a_later_deadline_is_caught_after_the_thread_slept_on_a_released_one() -> None:
    """The thread is not woken for a deadline later than the earliest on its heap: it
    wakes at that one, drops it (released) and goes on to the next."""
    dog, first, second = Watchdog(), threading.Event(), threading.Event()
    early = dog.watch(0.05, first.set)
    dog.release(early)
    dog.watch(0.1, second.set)
    assert second.wait(SIGNAL_WAIT)
    assert not first.is_set()


def test_an_earlier_deadline_wakes_a_thread_sleeping_on_a_long_one() -> None:
    dog, slow, fast = Watchdog(), threading.Event(), threading.Event()
    long_ticket = dog.watch(3600, slow.set)
    dog.watch(0.01, fast.set)
    assert fast.wait(SIGNAL_WAIT)
    assert not slow.is_set() and dog.release(long_ticket) is True


class _Cursor:
    def interrupt(self) -> None:
        raise AssertionError("a released query was interrupted")


def test_released_tickets_let_go_of_their_cursor_and_the_heap_stays_small() -> None:
    dog = Watchdog()
    cursor = _Cursor()
    alive = weakref.ref(cursor)
    dog.release(dog.watch(3600, cursor.interrupt))
    del cursor
    gc.collect()
    assert alive() is None
    live = [dog.watch(3600, _Cursor().interrupt) for _ in range(10)]
    for _ in range(5_000):
        dog.release(dog.watch(3600, _Cursor().interrupt))
    assert len(dog._heap) <= 2 * len(live) + 65
    assert all(dog.release(t) for t in live)


def test_release_waits_for_an_interrupt_still_inside_the_connection() -> None:
    """The interrupt runs on the watchdog's thread, outside its lock. release() returned
    while one was still inside the connection, and the caller's next call on it (closing
    the cursor) failed "connection is busy with another call" (a CI run, Ctrl-C during a
    query). release() now returns only once that interrupt has."""
    dog = Watchdog()
    inside, leave, released = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def interrupt() -> None:
        inside.set()
        leave.wait(SIGNAL_WAIT)
        order.append("interrupt returned")

    ticket = dog.watch(0, interrupt)  # fires at once
    assert inside.wait(SIGNAL_WAIT)
    outcome: list[bool] = []

    def release() -> None:
        outcome.append(dog.release(ticket))
        order.append("released")
        released.set()

    releaser = threading.Thread(target=release)
    releaser.start()
    # while the interrupt is inside, release has not returned (a bounded look: with the
    # fix it cannot return before `leave`, so this wait never decides the outcome)
    assert not released.wait(0.3)
    leave.set()
    releaser.join(SIGNAL_WAIT)
    # every interrupt (it is sent again until released) returned before release did
    assert order[-1] == "released" and set(order[:-1]) == {"interrupt returned"}, order
    assert outcome == [False], outcome
