"""Scan caps and budgets for remote queries: per query, per user per UTC day, concurrency;
and the caps every query shares (result size, queries running at once per user and in all).

Caps come from the settings (``scan_caps``) and can be changed at run time by an admin
(``server_config`` keys ``scan_caps.<name>``). Spending is kept in memory (never a write
on the request path); a user's spend for today is seeded once from the audit log, where
every remote query records its bytes (what the warehouse billed, where it says).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from agnes_mcp.auth.principal import Principal
from agnes_mcp.rails.refusals import BudgetExhausted, TooManyConcurrent
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.server_config import ServerConfigRepository
from agnes_sync.human_size import exact_size

CAP_KEYS = (
    "per_query_bytes",
    "per_user_daily_bytes",
    "concurrent_remote_queries_per_user",
    "concurrent_queries_per_user",
    "concurrent_queries",
    "max_result_rows",
    "max_result_bytes",
    "max_snapshot_rows",
    "max_snapshot_bytes",
)


@dataclass(frozen=True)
class Caps:
    per_query_bytes: int
    per_user_daily_bytes: int
    concurrent_remote_queries_per_user: int
    concurrent_queries_per_user: int
    concurrent_queries: int
    max_result_rows: int
    max_result_bytes: int
    max_snapshot_rows: int
    max_snapshot_bytes: int


class ScanBudget:
    def __init__(
        self, settings: AgnesSettings, config: ServerConfigRepository, store: SystemStore
    ) -> None:
        self._settings = settings
        self._config = config
        self._store = store
        self._lock = threading.Lock()
        self._spent: dict[tuple[str, date], int] = {}
        self._running: dict[str, int] = {}
        self._reserved: dict[str, int] = {}  # held by running remote queries, per user
        self._caps: tuple[int, Caps] | None = None

    def caps(self) -> Caps:
        """Current caps: settings, overridden by server config (cached per store change)."""
        generation = self._store.generation
        if self._caps is not None and self._caps[0] == generation:
            return self._caps[1]
        defaults = self._settings.scan_caps
        stored = self._config.all()
        values = {
            key: int(stored.get(f"scan_caps.{key}", getattr(defaults, key))) for key in CAP_KEYS
        }
        caps = Caps(**values)
        self._caps = (generation, caps)
        return caps

    def _today(self) -> date:
        return datetime.now(UTC).date()

    def spent(self, principal: Principal) -> int:
        key = (principal.user_id, self._today())
        with self._lock:
            if key in self._spent:
                return self._spent[key]
        seeded = self._seed(principal.user_id, key[1])
        with self._lock:
            return self._spent.setdefault(key, seeded)

    def _seed(self, user_id: str, day: date) -> int:
        with self._store.cursor() as cur:
            row = cur.execute(
                "SELECT coalesce(sum(TRY_CAST(coalesce(json_extract(params, '$.bytes_billed'), "
                "json_extract(params, '$.bytes_scanned')) AS BIGINT)), 0) "
                "FROM audit_log WHERE user_id = ? AND occurred_at >= ?",
                [user_id, datetime(day.year, day.month, day.day, tzinfo=UTC)],
            ).fetchone()
        return int(row[0]) if row else 0

    def remaining(self, principal: Principal) -> int:
        return max(0, self.caps().per_user_daily_bytes - self.spent(principal))

    def check_daily(self, principal: Principal, scan_bytes: int) -> None:
        self._refuse_over(self.remaining(principal), scan_bytes)

    def _refuse_over(self, left: int, scan_bytes: int) -> None:
        """Refused when ``scan_bytes`` passes what is ``left`` today, or nothing is left (an
        estimate of 0 reads something all the same)."""
        if left <= 0 or scan_bytes > left:
            now = datetime.now(UTC)
            midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
            raise BudgetExhausted(
                f"The query would scan {exact_size(scan_bytes)}; {exact_size(left)} of "
                f"today's {exact_size(self.caps().per_user_daily_bytes)} "
                "(per_user_daily_bytes) remain.",
                details={
                    "scan_bytes": scan_bytes,
                    "remaining_bytes": left,
                    "retry_after_seconds": max(1, math.ceil((midnight - now).total_seconds())),
                },
            )

    def charge(self, principal: Principal, scanned: int) -> int:
        """Record spend; returns what remains today."""
        self.spent(principal)  # seed first
        key = (principal.user_id, self._today())
        with self._lock:
            self._spent[key] = self._spent.get(key, 0) + scanned
            total = self._spent[key]
        return max(0, self.caps().per_user_daily_bytes - total)

    @contextmanager
    def reserve(self, principal: Principal, scan_bytes: int) -> Iterator[int]:
        """Hold today's budget for one remote query: the most it may read (yielded: the
        read meter's limit), the per-query cap or what is left once the user's other
        running queries' holds are counted, whichever is less. Charged from what was read
        (:meth:`charge`); the hold ends with the block. Concurrent queries cannot together
        pass the budget, whatever their estimates said."""
        user = principal.user_id
        self.spent(principal)  # seed first
        caps = self.caps()
        with self._lock:
            spent = self._spent.get((user, self._today()), 0)
            left = max(0, caps.per_user_daily_bytes - spent - self._reserved.get(user, 0))
            self._refuse_over(left, scan_bytes)
            held = min(caps.per_query_bytes, left)
            self._reserved[user] = self._reserved.get(user, 0) + held
        try:
            yield held
        finally:
            with self._lock:
                rest = self._reserved[user] - held
                if rest:
                    self._reserved[user] = rest
                else:
                    del self._reserved[user]

    @contextmanager
    def slot(self, principal: Principal) -> Iterator[None]:
        """A place among the user's concurrent remote queries, or ``too_many_concurrent``."""
        allowed = self.caps().concurrent_remote_queries_per_user
        with self._lock:
            running = self._running.get(principal.user_id, 0)
            if running >= allowed:
                raise TooManyConcurrent(
                    f"You already run {running} remote queries; the limit is {allowed}."
                )
            self._running[principal.user_id] = running + 1
        try:
            yield
        finally:
            with self._lock:
                self._running[principal.user_id] -= 1
