"""Fair sharing of the query engine: how many queries run at once, and on which threads.

Two separate things keep one analyst from starving everyone:

- **Slots** (:class:`QuerySlots`): a query takes a place among its user's running queries
  and among the server's, or is refused at once with ``too_many_queries`` (429, with the
  seconds after which a place frees for sure). Nothing queues: a caller over the limit
  hears so in microseconds and retries, instead of waiting behind slow queries.
- **The query lane** (:func:`in_query_lane`): async code hands query work to an executor
  of its own, so slow queries never hold the threads that FastAPI's sync routes and
  dependencies and FastMCP's sync tools share (anyio's default pool of 40), and its
  threads run at a lower CPU priority. ``/healthz``, sign-in, the catalog and admin calls
  keep their threads, and get the CPU first, however many queries run.

The lane is wider than the largest server-wide limit (``concurrent_queries``), so it is
never what a query waits for: the slots bound the work, the lane only separates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from agnes_mcp.query.lane_pool import LifoThreadPool, NoThread
from agnes_mcp.rails.refusals import QueryRefused
from agnes_sync.caller import CALLER, caller_within
from agnes_sync.errors import AgnesError
from agnes_sync.plural import counted

P = ParamSpec("P")
T = TypeVar("T")

# Largest value an admin may give ``concurrent_queries``; the lane is wider by a margin
# so refusals (which take a lane thread for microseconds) never wait behind full slots.
MAX_CONCURRENT_QUERIES = 200
LANE_THREADS = MAX_CONCURRENT_QUERIES + 56


# What a lane that could start no thread asks its caller to wait.
NO_THREAD_RETRY_SECONDS = 1


class TooManyQueries(QueryRefused):
    code = "too_many_queries"
    status = 429
    default_hint = (
        "Wait for one of the running queries to finish, then send it again "
        "(details.retry_after_seconds says by when a place frees at the latest)."
    )


@dataclass
class _Running:
    user: str
    deadline: float  # time.monotonic() when its timeout stops it at the latest


class QuerySlots:
    """Places for running queries: at most ``per_user`` per user and ``total`` in all.

    :meth:`hold` never waits: over a limit it raises :class:`TooManyQueries`, naming the
    limit and ``retry_after_seconds`` (when the oldest running query in that scope
    reaches its timeout, so a place is free by then whatever happens)."""

    def __init__(
        self,
        user_limit: str = "scan_caps.concurrent_queries_per_user",
        total_limit: str = "scan_caps.concurrent_queries",
        *,
        what: tuple[str, str] = ("query", "queries"),
        refusal: type[AgnesError] = TooManyQueries,
    ) -> None:
        self._names = {"user": user_limit, "server": total_limit}
        self._what = what  # what runs, in the refusal's words (one, several)
        self._refused = refusal
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._per_user: dict[str, int] = {}
        self._ids = iter(range(1, 2**63))

    def running(self, user: str | None = None) -> int:
        with self._lock:
            return len(self._running) if user is None else self._per_user.get(user, 0)

    @contextmanager
    def hold(
        self, user: str, *, per_user: int, total: int, timeout_seconds: float
    ) -> Iterator[None]:
        now = time.monotonic()
        with self._lock:
            mine = self._per_user.get(user, 0)
            if mine >= per_user:
                raise self._refusal("user", per_user, mine, user, now)
            if len(self._running) >= total:
                raise self._refusal("server", total, len(self._running), None, now)
            ticket = next(self._ids)
            self._running[ticket] = _Running(user, now + timeout_seconds)
            self._per_user[user] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                del self._running[ticket]
                left = self._per_user[user] - 1
                if left:
                    self._per_user[user] = left
                else:
                    del self._per_user[user]

    def _refusal(
        self,
        scope: Literal["user", "server"],
        limit: int,
        running: int,
        user: str | None,
        now: float,
    ) -> AgnesError:
        deadlines = [r.deadline for r in self._running.values() if user is None or r.user == user]
        wait = max(1, math.ceil(min(deadlines) - now)) if deadlines else 1
        name = self._names[scope]
        what = counted(running, *self._what)  # "1 query", "2 queries"
        if scope == "user":
            message = f"You already run {what} at once; the limit is {limit} ({name})."
        else:
            message = f"The server already runs {what} at once; the limit is {limit} ({name})."
        return self._refused(
            message,
            details={
                "scope": scope,
                "limit": limit,
                "limit_name": name,
                "running": running,
                "retry_after_seconds": wait,
            },
        )


# --- the query lane ------------------------------------------------------------------------

# Query threads run at a lower CPU priority (a higher nice value, Linux only): when queries
# keep every core busy, the event loop and the threads of the other routes still get the
# CPU first, so they answer in milliseconds rather than queueing behind 100 scans.
QUERY_NICENESS = 10


def _lower_priority() -> None:
    if sys.platform.startswith("linux"):  # elsewhere setpriority would renice the process
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), QUERY_NICENESS)


# Calls in a row stay on the thread that went idle last, with its caches warm (lane_pool).
_LANE = LifoThreadPool(LANE_THREADS, thread_name_prefix="agnes-query", initializer=_lower_priority)


async def in_query_lane(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking query work ``fn(*args, **kwargs)`` on the query lane's threads, with the
    caller's context variables (as anyio's ``run_sync`` passes them). DuckDB's own worker
    threads, started by a sandbox created here, inherit the lane's priority.

    When the awaiting call is cancelled (its caller gave up), the queries ``fn`` runs are
    interrupted at once (:class:`~agnes_sync.caller.Caller`) instead of running on
    to their timeout with a core and one of the caller's query places.

    A query past its timeout that the engine is slow to stop (a function slow on every
    row holds a batch of rows for seconds) answers its caller then
    (:meth:`~agnes_sync.caller.Caller.answer_now`): the call ends with the timeout, while
    ``fn`` ends on its own thread, its query place taken until it does."""
    with caller_within() as caller:  # an MCP call's caller may cancel it too
        context = contextvars.copy_context()
        context.run(CALLER.set, caller)
        call: Callable[[], T] = functools.partial(context.run, fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        try:
            running = loop.run_in_executor(_LANE, call)
        except NoThread:
            raise _no_thread() from None
        # The answer given early ends the wait: the future is cancelled (fn runs on; its
        # outcome, once there, goes nowhere), and the wait below raises that answer.
        caller.on_answer_now(lambda _answer: loop.call_soon_threadsafe(running.cancel))
        try:
            return await running
        except NoThread:
            raise _no_thread() from None
        except asyncio.CancelledError:
            if caller.early is not None and not _cancelling():
                raise caller.early from None
            caller.cancel()
            raise


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (its caller gave up)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _no_thread() -> TooManyQueries:
    return TooManyQueries(
        "The server cannot start work now: the system gives it no more threads.",
        hint="Send it again in a moment; if it persists, the server's thread or "
        "memory limit is too low for its query load (scan_caps.concurrent_queries).",
        details={"retry_after_seconds": NO_THREAD_RETRY_SECONDS},
    )


def retry_after(error: Any) -> int | None:
    """Seconds a client should wait before retrying a refusal, when it says so."""
    details = getattr(error, "details", None)
    if isinstance(details, dict):
        value = details.get("retry_after_seconds")
        if isinstance(value, (int, float)) and value > 0:
            return math.ceil(value)
    return None
