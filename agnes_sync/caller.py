"""The caller a piece of work is done for, and what stops that work when the caller gives
up (an MCP client's ``notifications/cancelled``, a client that timed out or went away).

Work started on the caller's behalf registers how to stop it (:meth:`Caller.on_cancel`):
a query watched by the rails' watchdog is interrupted, a request relayed to the server has
its connection shut, so the server sees the hang-up and stops the query there too.
:meth:`Caller.cancel` stops all of them at once, and any registered later.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Hashable

from agnes_sync.errors import AgnesError


class CallCancelled(AgnesError):
    """The caller gave up on the call (cancelled it, or went away) and its work was
    stopped: no one reads this answer, but the logs and the audit trail say so."""

    code = "query_cancelled"
    status = 499  # "client closed request" (nginx's code): nobody reads it
    default_hint = "Send the call again if you still want its answer."


class Caller:
    """The work running on behalf of one call, stopped together when its caller gives up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[Hashable, Callable[[], object]] = {}
        self.cancelled = False

    def on_cancel(self, key: Hashable, stop: Callable[[], object]) -> None:
        """Call ``stop`` when the caller gives up (at once if it already has), unless
        :meth:`discard` of ``key`` comes first."""
        with self._lock:
            if not self.cancelled:
                self._stops[key] = stop
                return
        stop()  # started after the caller gave up: stopped at once

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._stops.pop(key, None)

    def cancel(self) -> int:
        """Stop the work running for this call, and any it starts from now on; returns
        how much was running."""
        with self._lock:
            self.cancelled = True
            stops, self._stops = self._stops, {}
        for stop in stops.values():
            with contextlib.suppress(Exception):  # already ended: nothing left to stop
                stop()
        return len(stops)


# The caller the current call's work runs for (None: no one can cancel it).
CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("agnes_caller", default=None)


def caller_gave_up() -> bool:
    """Whether the current call's caller cancelled it (so an interrupt came from there,
    not from a timeout)."""
    caller = CALLER.get()
    return caller is not None and caller.cancelled
