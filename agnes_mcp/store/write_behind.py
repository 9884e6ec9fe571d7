"""Writes that must never hold up a request: token last-used times, users' last pull
and audit rows.

Requests only append to memory; a background thread flushes to the system DB
every few seconds and once more at shutdown. A token used 10,000 times between
two flushes costs one UPDATE, not 10,000, so request latency does not grow with
a token's use count.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime

from agnes_mcp.store.audit import AuditEntry, AuditRepository
from agnes_mcp.store.oauth import OAuthRepository
from agnes_mcp.store.tokens import TokenRepository, TokenUse
from agnes_mcp.store.users import UserRepository
from agnes_mcp.store.web_sessions import WebSessionRepository

logger = logging.getLogger("agnes.write_behind")

MAX_PENDING_AUDIT = 100_000


class WriteBehind:
    def __init__(
        self,
        tokens: TokenRepository,
        audit: AuditRepository,
        *,
        users: UserRepository | None = None,
        sessions: WebSessionRepository | None = None,
        interval_seconds: float = 2.0,
    ) -> None:
        self._tokens = tokens
        self._audit = audit
        self._users = users
        self._sessions = sessions
        self._interval = interval_seconds
        self._lock = threading.Lock()
        # One flush at a time: a flush returns only once everything queued before it is
        # written, even rows a concurrent (background) flush had already taken.
        self._flushing = threading.Lock()
        self._uses: dict[str, TokenUse] = {}
        self._pulls: dict[str, datetime] = {}
        self._seen: dict[str, datetime] = {}
        self._grant_uses: dict[str, datetime] = {}
        self.oauth: OAuthRepository | None = None  # set by the services once built
        self._entries: deque[AuditEntry] = deque()
        self._dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the request side: memory only ----------------------------------------------

    def token_used(self, token_id: str, at: datetime, ip: str | None) -> None:
        with self._lock:
            self._uses[token_id] = TokenUse(token_id, at, ip)

    def pulled(self, user_id: str, at: datetime) -> None:
        with self._lock:
            self._pulls[user_id] = at

    def session_seen(self, session_id: str, at: datetime) -> None:
        with self._lock:
            self._seen[session_id] = at

    def grant_used(self, grant_id: str, at: datetime) -> None:
        with self._lock:
            self._grant_uses[grant_id] = at

    def audit(self, entry: AuditEntry) -> None:
        with self._lock:
            if len(self._entries) >= MAX_PENDING_AUDIT:
                self._entries.popleft()
                self._dropped += 1
            self._entries.append(entry)

    # --- the background side ------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="agnes-write-behind", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def flush(self) -> tuple[int, int]:
        """Write everything pending now; returns (token uses, audit rows) written."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> tuple[int, int]:
        with self._lock:
            uses = list(self._uses.values())
            self._uses.clear()
            pulls, self._pulls = self._pulls, {}
            seen, self._seen = self._seen, {}
            grant_uses, self._grant_uses = self._grant_uses, {}
            entries = list(self._entries)
            self._entries.clear()
            dropped, self._dropped = self._dropped, 0
        if dropped:
            logger.warning("audit queue overflowed: %d oldest entries were dropped", dropped)
        try:
            written_uses = self._tokens.record_uses(uses)
        except BaseException:
            self._requeue(uses, entries)
            raise
        if self._users is not None:
            for user_id, at in pulls.items():
                self._users.record_pull(user_id, at)
        if self._sessions is not None:
            self._sessions.record_seen(seen.items())
        if self.oauth is not None:
            self.oauth.record_uses(grant_uses.items())
        try:
            written_entries = self._audit.add_many(entries)
        except BaseException:
            self._requeue([], entries)
            raise
        return written_uses, written_entries

    def _requeue(self, uses: list[TokenUse], entries: list[AuditEntry]) -> None:
        """Put back what a failed flush could not write (newer uses win)."""
        with self._lock:
            for use in uses:
                self._uses.setdefault(use.token_id, use)
            self._entries.extendleft(reversed(entries))

    def pending(self) -> tuple[int, int]:
        with self._lock:
            return len(self._uses), len(self._entries)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # a failed flush must not kill the thread; the next one retries
                logger.exception("write-behind flush failed")
