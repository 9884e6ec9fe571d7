"""Group sync: a user's Google Workspace groups, read from the Directory API, become
their ``google_sync`` memberships in Agnes.

It runs at each Google sign-in (:meth:`GroupSync.on_sign_in`), when a user presses
"Refresh my groups" (:meth:`GroupSync.refresh`, rate-limited) and on a schedule for every
active user of the sign-in domains. Each sync replaces the user's synced memberships in
one transaction; a failed read keeps the previous ones and records the failure, which
``/me`` and the admin pages show through :meth:`GroupSync.status`.

Enabled only when ``auth.google_groups.credentials_env`` names an environment variable
holding a service account's JSON key.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from agnes_mcp.background_loop import BackgroundLoop
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.google_groups.directory_client import DirectoryClient
from agnes_mcp.google_groups.errors import GroupRefreshTooSoon, GroupSyncDisabled
from agnes_mcp.google_groups.mapping import targets
from agnes_mcp.google_groups.service_account import ServiceAccountKey, load_service_account
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.audit import AuditEntry
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.group_sync import GroupSyncRepository, GroupSyncStatus
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.users import User, UserRepository
from agnes_mcp.store.write_behind import WriteBehind
from agnes_sync.errors import AgnesError

logger = logging.getLogger("agnes.group_sync")

AUDIT_ACTION = "groups.sync"
REFRESH_EVERY_SECONDS = 30.0  # "Refresh my groups": at most once per user in this time
Trigger = Literal["sign_in", "refresh", "schedule", "sync_all", "manual"]


class GroupSyncResult(BaseModel):
    """One user's sync: what they are now in through the sync, and what changed."""

    user_id: str
    email: str
    trigger: str
    outcome: Literal["ok", "failed"]
    synced_at: datetime
    google_groups: int = 0  # groups read from the Directory API (before the prefix filter)
    groups: list[str] = []  # Agnes groups the user is in through the sync, after it
    added: list[str] = []
    removed: list[str] = []
    created: list[str] = []  # Agnes groups made by this sync
    skipped: list[str] = []  # Google groups not joined, with the reason
    kept: list[str] = []  # removals not made (the last active admin), with the reason
    revoked_tokens: list[str] = []  # ids of admin-scoped tokens revoked on leaving Admin
    error: dict[str, Any] | None = None  # {code, message, hint} when failed


class SyncAllSummary(BaseModel):
    users: int
    ok: int
    failed: int
    failures: list[dict[str, str]] = []  # [{email, message}]
    seconds: float


class GroupSync:
    """Reads a user's Google groups into ``user_group_members`` (source ``google_sync``)."""

    def __init__(
        self,
        settings: AgnesSettings,
        store: SystemStore,
        users: UserRepository,
        write_behind: WriteBehind,
        *,
        clock: Callable[[], datetime] = utcnow,
        retry_backoff_seconds: float = 0.5,
        refresh_every_seconds: float = REFRESH_EVERY_SECONDS,
    ) -> None:
        self._settings = settings
        self._config = settings.auth.google_groups
        self._users = users
        self._write_behind = write_behind
        self._clock = clock
        self._backoff = retry_backoff_seconds
        self._refresh_every = refresh_every_seconds
        self.repository = GroupSyncRepository(store)
        self._stop = threading.Event()
        self._schedule = BackgroundLoop(
            "agnes-group-sync", self.sync_due, self._stop, logger=logger
        )
        self._client: DirectoryClient | None = None
        self._client_lock = threading.Lock()
        self._refreshed: dict[str, float] = {}
        self._refresh_lock = threading.Lock()
        self._key: ServiceAccountKey | None = None
        self.disabled_reason: str | None = None
        env_name = self._config.credentials_env
        if not env_name:
            self.disabled_reason = "auth.google_groups.credentials_env is not set."
        else:
            try:
                self._key = load_service_account(env_name)
            except GroupSyncDisabled as exc:
                self.disabled_reason = exc.message
                logger.warning("Google group sync is off: %s", exc.message)

    @property
    def enabled(self) -> bool:
        return self._key is not None

    # --- one user ---------------------------------------------------------------------------

    def on_sign_in(self, user_id: str, email: str) -> None:
        """Sync one user's groups at an OIDC sign-in (blocking; never raises: a failure is
        recorded and the previous memberships stay). Call it off the event loop."""
        if not self.enabled:
            return
        try:
            self.sync_user(user_id, email, trigger="sign_in")
        except Exception:  # signing in must not fail because the group sync did
            logger.exception("group sync at sign-in of %s failed", email)

    def refresh(self, user_id: str, email: str) -> GroupSyncResult:
        """ "Refresh my groups": a sync now, at most once per user every 30 s."""
        self._require_enabled()
        now = time.monotonic()
        with self._refresh_lock:
            last = self._refreshed.get(user_id)
            if last is not None and now - last < self._refresh_every:
                wait = self._refresh_every - (now - last)
                raise GroupRefreshTooSoon(
                    f"Your groups were refreshed moments ago; try again in {wait:.0f} s.",
                    details={"retry_after_seconds": round(wait, 1)},
                )
            if len(self._refreshed) > 10_000:
                self._refreshed.clear()
            self._refreshed[user_id] = now
        return self.sync_user(user_id, email, trigger="refresh")

    def sync_user(self, user_id: str, email: str, trigger: Trigger = "manual") -> GroupSyncResult:
        """Read ``email``'s groups and make them the user's synced memberships.

        A failure to read leaves the memberships alone and returns (and records) outcome
        ``failed``; only a disabled sync or an unknown user raise."""
        self._require_enabled()
        self._users.get(user_id)  # UserNotFound before any call to Google
        started = time.perf_counter()
        try:
            read = self._directory().groups_of(email)
            wanted = targets(read, self._config)
            applied = self.repository.apply(user_id, wanted, self._clock())
        except AgnesError as exc:
            return self._failed(user_id, email, trigger, exc.to_dict(), started)
        except Exception:
            incident = secrets.token_hex(6)
            logger.exception("group sync of %s failed unexpectedly (incident %s)", email, incident)
            error = {
                "code": "internal_error",
                "message": f"The group sync failed unexpectedly (incident {incident}).",
                "hint": "The server log holds the details under this incident id.",
            }
            return self._failed(user_id, email, trigger, error, started)
        result = GroupSyncResult(
            user_id=user_id,
            email=email,
            trigger=trigger,
            outcome="ok",
            synced_at=self._clock(),
            google_groups=len(read),
            groups=applied.groups,
            added=applied.added,
            removed=applied.removed,
            created=applied.created,
            skipped=applied.skipped,
            kept=applied.kept,
            revoked_tokens=applied.revoked_tokens,
        )
        self._audit(result, started)
        return result

    def _failed(
        self, user_id: str, email: str, trigger: str, error: dict[str, Any], started: float
    ) -> GroupSyncResult:
        at = self._clock()
        logger.warning("group sync of %s failed: %s", email, error["message"])
        self.repository.record_failure(user_id, at, error["message"])
        result = GroupSyncResult(
            user_id=user_id,
            email=email,
            trigger=trigger,
            outcome="failed",
            synced_at=at,
            groups=self.repository.memberships(user_id),
            error=error,
        )
        self._audit(result, started)
        return result

    def _audit(self, result: GroupSyncResult, started: float) -> None:
        """One audit row per sync, in the synced user's name (the actor is the system, or
        the user pressing "Refresh"; ``params.trigger`` says which)."""
        params: dict[str, Any] = {"trigger": result.trigger, "outcome": result.outcome}
        if result.outcome == "ok":
            params |= {"added": result.added, "removed": result.removed, "groups": result.groups}
            if result.revoked_tokens:
                params["revoked_tokens"] = result.revoked_tokens
        else:
            params["error"] = (result.error or {}).get("message")
        self._write_behind.audit(
            AuditEntry(
                at=result.synced_at,
                user_id=result.user_id,
                action=AUDIT_ACTION,
                resource=result.user_id,
                params=params,
                result="ok" if result.outcome == "ok" else str((result.error or {}).get("code")),
                duration_ms=(time.perf_counter() - started) * 1000,
                client_ip=client_ip_var.get(),
            )
        )

    def status(self, user_id: str) -> GroupSyncStatus | None:
        """The outcome of the user's last sync, or ``None`` if never synced."""
        return self.repository.status(user_id)

    # --- everyone ---------------------------------------------------------------------------

    def eligible_users(self) -> list[User]:
        """Active users whose e-mail is in one of the sign-in domains."""
        domains = set(self._settings.sign_in_domains)
        return [
            u
            for u in self._users.all(include_inactive=False)
            if u.email.rsplit("@", 1)[-1].lower() in domains
        ]

    def sync_all(self, trigger: Trigger = "sync_all") -> SyncAllSummary:
        """Sync every eligible user now (one after the other); stops early at :meth:`stop`."""
        self._require_enabled()
        return self._sync_many(self.eligible_users(), trigger)

    def _sync_many(self, users: list[User], trigger: Trigger) -> SyncAllSummary:
        started = time.perf_counter()
        ok, failures = 0, []
        for user in users:
            if self._stop.is_set():
                break
            result = self.sync_user(user.id, user.email, trigger=trigger)
            if result.outcome == "ok":
                ok += 1
            else:
                failures.append({"email": user.email, "message": (result.error or {})["message"]})
        return SyncAllSummary(
            users=ok + len(failures),
            ok=ok,
            failed=len(failures),
            failures=failures,
            seconds=round(time.perf_counter() - started, 3),
        )

    def sync_due(self) -> float:
        """Sync the users whose last sync is older than the interval (or who never had
        one); return the seconds until the next one is due."""
        interval = timedelta(hours=self._config.sync_interval_hours)
        users = self.eligible_users()
        statuses = self.repository.all()
        now = self._clock()
        due = [
            u for u in users if u.id not in statuses or statuses[u.id].synced_at + interval <= now
        ]
        if due:
            summary = self._sync_many(due, "schedule")
            logger.info("scheduled group sync: %d users, %d failed", summary.users, summary.failed)
        statuses = self.repository.all()
        now = self._clock()
        nexts = [statuses[u.id].synced_at + interval for u in users if u.id in statuses]
        wait = (min(nexts) - now).total_seconds() if nexts else interval.total_seconds()
        return min(max(wait, 1.0), interval.total_seconds())

    # --- plumbing ---------------------------------------------------------------------------

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise GroupSyncDisabled(
                f"Group sync from Google Workspace is not enabled: {self.disabled_reason}"
            )

    def _directory(self) -> DirectoryClient:
        with self._client_lock:
            if self._client is None:
                assert self._key is not None
                self._client = DirectoryClient(
                    self._key,
                    str(self._config.api_url),
                    self._config.delegated_admin,
                    backoff_seconds=self._backoff,
                    stop=self._stop,
                )
            return self._client

    def start(self) -> None:
        """Start the scheduled sync of every user's groups (when enabled and the server's
        scheduler is on)."""
        self._stop.clear()
        if self.enabled and self._settings.scheduler_enabled:
            self._schedule.start()

    def stop(self) -> None:
        """Stop the schedule (promptly, also mid-retry) and close the HTTP client."""
        self._schedule.stop()
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
