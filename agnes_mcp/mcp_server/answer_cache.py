"""Answers of the listing tools (catalog, schema), kept while nothing they depend on changed.

A catalog or schema answer depends on the caller (their groups and token scopes), the
arguments, and two counters: the system store's generation (grants, memberships, users,
tokens, registry, metrics: every committed change bumps it) and the orchestrator's (every
rebuild of the analytics DB: new data, freshness). The server keys each answer on those,
so a repeated call is a dictionary lookup on the event loop, with no thread, no render
and no serialisation; a changed grant or a sync makes a new key, and the old entry ages
out. A miss computes the answer on a worker thread, as FastMCP runs a sync tool.

A workspace (stdio, one user, local files that ``agnes pull`` replaces) passes no key
function: every call is computed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import anyio.to_thread
from fastmcp.tools.base import ToolResult

MAX_ENTRIES = 512  # a first catalog page of 1,000 tables is ~25 KB

AnswerKey = Callable[[], Hashable | None]


class AnswerCache:
    """Used from one event loop only (gets and puts happen there), so it needs no lock."""

    def __init__(self, key: AnswerKey | None, max_entries: int = MAX_ENTRIES) -> None:
        self._key = key
        self._max = max_entries
        self._entries: OrderedDict[Hashable, ToolResult] = OrderedDict()

    async def answer(
        self,
        call: tuple[Hashable, ...],
        work: Callable[[], ToolResult],
        keep: Callable[[ToolResult], bool] = lambda _answer: True,
    ) -> ToolResult:
        """The kept answer of ``call`` (tool name and arguments) for this caller and state,
        or ``work()`` run on a worker thread and kept when ``keep`` says so (an answer
        about something the state does not cover: the caller's snapshots and results come
        and go and expire without moving it). A refusal raised by ``work`` is not kept."""
        state = self._key() if self._key is not None else None
        key = None if state is None else (state, call)
        if key is not None:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        answer = await anyio.to_thread.run_sync(work)
        if key is not None and keep(answer):
            self._entries[key] = answer
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return answer

    def __len__(self) -> int:
        return len(self._entries)
