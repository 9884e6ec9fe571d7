"""Results too large to show, kept in server memory so the agent can query them next.

Kept per token (one agent session's credentials), for an hour after last use, a few per
token and a bounded total; past the total, the token holding the most gives up its oldest
first, so one session's large results never push out another's. Names are random
(``result_<hex>``), so two sessions of one user never collide, and a name only resolves
for its own token. Each result remembers the tables its rows came from (through results
and snapshots it read, too): it resolves only while its owner may still read every one,
as snapshots do.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from agnes_mcp.rails.extra_tables import ExtraTable

if TYPE_CHECKING:
    from agnes_mcp.auth.principal import Principal

TTL_SECONDS = 3600.0


def result_owner(principal: Principal) -> str:
    """Whose results a caller reads: their token's (a web session: the user's)."""
    return principal.token_id or principal.user_id


PER_TOKEN = 20
TOTAL_BYTES = 512 * 1024**2


@dataclass
class _Kept:
    table: pa.Table
    sql: str | None
    created_at: dt.datetime
    used: float
    sources: frozenset[str]  # the ids of the tables its rows came from


class ResultStore:
    def __init__(self, ttl_seconds: float = TTL_SECONDS, total_bytes: int = TOTAL_BYTES) -> None:
        self._ttl = ttl_seconds
        self._total = total_bytes
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str], _Kept] = OrderedDict()

    def keep(
        self,
        owner: str,
        table: pa.Table,
        sql: str | None,
        sources: frozenset[str] = frozenset(),
    ) -> str:
        name = f"result_{secrets.token_hex(4)}"
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            self._kept[(owner, name)] = _Kept(table, sql, dt.datetime.now(dt.UTC), now, sources)
            mine = [key for key in self._kept if key[0] == owner]
            for key in mine[:-PER_TOKEN]:
                del self._kept[key]
            while self._bytes() > self._total:
                victim = self._victim(keep=(owner, name))
                if victim is None:
                    break
                del self._kept[victim]
        return name

    def _victim(self, keep: tuple[str, str]) -> tuple[str, str] | None:
        """What goes first when the store is full: the oldest result of the token holding
        the most bytes, so one session keeping large results gives up its own, not other
        sessions'. ``keep`` (the result just kept, whose name the caller is handed) is
        never it; None when nothing else is left."""
        held: dict[str, int] = {}
        for (who, _), kept in self._kept.items():
            held[who] = held.get(who, 0) + kept.table.nbytes
        for who in sorted(held, key=held.__getitem__, reverse=True):
            for key in self._kept:
                if key[0] == who and key != keep:
                    return key
        return None

    def sources(self, owner: str, name: str) -> frozenset[str] | None:
        """The tables ``owner``'s result ``name`` came from (None: no such result)."""
        with self._lock:
            kept = self._kept.get((owner, name))
            return None if kept is None else kept.sources

    def extras(
        self, owner: str, readable: Callable[[str], bool] = lambda _table: True
    ) -> dict[str, ExtraTable]:
        """``owner``'s results whose every source table is ``readable`` (by its id)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            found = {}
            for (who, name), kept in self._kept.items():
                if who == owner and all(readable(t) for t in kept.sources):
                    kept.used = now
                    found[name] = ExtraTable(
                        name, "result", "an earlier query", kept.created_at, kept.table
                    )
            return found

    def _expire(self, now: float) -> None:
        for key in [k for k, v in self._kept.items() if now - v.used > self._ttl]:
            del self._kept[key]

    def _bytes(self) -> int:
        return sum(k.table.nbytes for k in self._kept.values())
