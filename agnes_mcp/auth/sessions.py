"""Web sessions for people: what ``/auth/login`` hands out and every web page checks.

The cookie holds ``[session id, secret]`` signed with the server's session key
(itsdangerous); the store keeps only the secret's SHA-256. A session ends when it is
idle longer than ``auth.session_idle_hours``, at sign-out, or when its user is
deactivated (checked on every request, not at expiry). Verification reads an
in-memory cache refreshed whenever the store changes and records the last use in
memory (the write-behind flushes it; for a session signed in with a token, that
token's last use too), so checking a session never waits on a write.

CSRF: a session's form token is an HMAC of its id under the session key; forms shown
before sign-in use :meth:`WebSessionService.login_csrf` over a random cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import (
    ConfigError,
    CsrfFailed,
    SessionExpired,
    SessionInvalid,
    UserInactive,
    UserNotFound,
)
from agnes_mcp.settings import SESSION_SECRET_MIN_CHARS, AgnesSettings
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.generation_cache import GenerationCache
from agnes_mcp.store.groups import GroupRepository
from agnes_mcp.store.ids import new_id, utcnow
from agnes_mcp.store.users import User, UserRepository
from agnes_mcp.store.web_sessions import WebSessionRecord, WebSessionRepository
from agnes_mcp.store.write_behind import WriteBehind

SESSION_COOKIE = "agnes_session"
LOGIN_CSRF_COOKIE = "agnes_login_csrf"
KEY_FILE = "session.key"
SESSION_SCOPES = frozenset({TokenScope.DATA.value, TokenScope.ADMIN.value})


@dataclass(frozen=True)
class WebSession:
    """A signed-in person. ``principal`` acts like a token with both scopes: what it may
    do is decided by its groups, exactly as for a personal access token."""

    id: str
    method: str
    created_at: datetime
    principal: Principal
    csrf: str

    @property
    def user_id(self) -> str:
        return self.principal.user_id


@dataclass(frozen=True)
class _Cached:
    record: WebSessionRecord | None
    user: User | None
    group_ids: frozenset[str]


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def load_session_key(settings: AgnesSettings) -> bytes:
    """The key that signs cookies: from the env var the settings name, else a random key
    kept in ``DATA_DIR/state/session.key`` (created 0600 on first use)."""
    env_name = settings.auth.session_secret_env
    if env_name:
        value = os.environ.get(env_name, "")
        if len(value) < SESSION_SECRET_MIN_CHARS:  # checked with the settings; set since?
            raise ConfigError(
                f"auth.session_secret_env names ${env_name}, which is unset or shorter than "
                f"{SESSION_SECRET_MIN_CHARS} characters.",
                hint=f"Set {env_name} to a long random value, or unset the setting.",
            )
        return value.encode("utf-8")
    path: Path = settings.state_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode("utf-8")


class WebSessionService:
    def __init__(
        self,
        settings: AgnesSettings,
        store: SystemStore,
        sessions: WebSessionRepository,
        users: UserRepository,
        groups: GroupRepository,
        write_behind: WriteBehind | None = None,
        clock: Callable[[], datetime] = utcnow,
        token_alive: Callable[[str], bool] | None = None,
        token_expires: Callable[[str], datetime | None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._sessions = sessions
        self._token_alive = token_alive
        self._token_expires = token_expires
        self._users = users
        self._groups = groups
        self._write_behind = write_behind
        self._clock = clock
        self._key: bytes | None = None
        self._lock = threading.Lock()
        self._cache: GenerationCache[str, _Cached] = GenerationCache(store, 10_000)
        self._seen: dict[str, datetime] = {}

    # --- keys and cookies ------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = load_session_key(self._settings)
        return self._key

    def serializer(self, purpose: str) -> URLSafeSerializer:
        """A signer for one purpose (the session cookie, the OIDC flow's state, ...)."""
        return URLSafeSerializer(self.key, salt=f"agnes-{purpose}")

    @property
    def idle(self) -> timedelta:
        return timedelta(hours=self._settings.auth.session_idle_hours)

    def cookie_options(self) -> dict[str, Any]:
        """Attributes of every cookie we set: HttpOnly, SameSite=Lax, Secure over https."""
        return {
            "httponly": True,
            "samesite": "lax",
            "secure": self._settings.base_url.startswith("https://"),
            "path": "/",
        }

    # --- sign-in and sign-out -----------------------------------------------------------

    def sign_in(
        self,
        user_id: str,
        method: str,
        ip: str | None = None,
        *,
        token_id: str | None = None,
        scopes: frozenset[str] | None = None,
    ) -> tuple[WebSession, str]:
        """A new session for an active user; returns it and the cookie value to set. One
        signed in with a token (``token_id``) holds that token's ``scopes`` and lives only
        as long as the token does."""
        user = self._users.get(user_id)
        if not user.active:
            raise UserInactive(f"The account {user.email} is deactivated.")
        secret = secrets.token_urlsafe(32)
        now = self._clock()
        record = WebSessionRecord(
            id=new_id("ses"),
            secret_hash=_sha256(secret),
            user_id=user.id,
            method=method,
            created_at=now,
            last_seen_at=now,
            created_ip=ip,
            revoked_at=None,
            token_id=token_id,
            scopes=sorted(scopes) if scopes is not None else None,
        )
        self._sessions.add(record)
        cookie = self.serializer("session").dumps([record.id, secret])
        return self._session(record, user, self._groups.group_ids_of(user.id)), cookie

    def sign_out(self, session_id: str) -> None:
        self._sessions.revoke(session_id, self._clock())

    def sign_out_user(self, user_id: str) -> None:
        """End every session of a user (e.g. when an admin deactivates them)."""
        self._sessions.revoke_user(user_id, self._clock())

    # --- verifying ------------------------------------------------------------------------

    def verify(self, cookie: str | None, *, touch: bool = True) -> WebSession:
        """The session behind a cookie value, or an :class:`AuthenticationError` subclass."""
        if not cookie:
            raise SessionInvalid("Not signed in.")
        try:
            loaded = self.serializer("session").loads(cookie)
        except BadSignature:
            raise SessionInvalid("The session cookie is not valid.") from None
        if (
            not isinstance(loaded, list)
            or len(loaded) != 2
            or not all(isinstance(part, str) for part in loaded)
        ):
            raise SessionInvalid("The session cookie is not valid.")
        session_id, secret = loaded
        cached = self._lookup(session_id)
        record, user = cached.record, cached.user
        expected = record.secret_hash if record else _sha256("0" * 43)
        if not hmac.compare_digest(_sha256(secret), expected) or record is None or user is None:
            raise SessionInvalid("The session cookie is not valid.")
        if record.revoked_at is not None:
            raise SessionExpired("This session was signed out.")
        self._require_token(record)
        if not user.active:
            raise UserInactive(f"The account {user.email} is deactivated.")
        now = self._clock()
        with self._lock:
            last_seen = max(self._seen.get(record.id, record.last_seen_at), record.last_seen_at)
        if now - last_seen > self.idle:
            raise SessionExpired(
                f"The session was idle for more than {self._settings.auth.session_idle_hours:g} h."
            )
        if touch:
            self._touch(record, now)
        return self._session(record, user, cached.group_ids)

    def check(self, session_id: str, *, touch: bool = True) -> WebSession:
        """Re-check a session the server already holds by id (e.g. the one an admin page
        was opened with) before acting for it: revoked, idle or deactivated raise. Only
        ``touch`` (the person did something) counts as use: a page's own periodic check
        restarted the idle clock, and an open tab kept its session alive for ever."""
        cached = self._lookup(session_id)
        record, user = cached.record, cached.user
        if record is None or user is None:
            raise SessionInvalid("No such session.")
        if record.revoked_at is not None:
            raise SessionExpired("This session was signed out.")
        self._require_token(record)
        if not user.active:
            raise UserInactive(f"The account {user.email} is deactivated.")
        with self._lock:
            last_seen = max(self._seen.get(record.id, record.last_seen_at), record.last_seen_at)
        now = self._clock()
        if now - last_seen > self.idle:
            raise SessionExpired("The session was idle too long.")
        if touch:
            self._touch(record, now)
        return self._session(record, user, cached.group_ids)

    def seconds_left(self, session_id: str) -> float | None:
        """Seconds until the session ends by itself unless used again: its idle limit
        from its last use, or its token's expiry when sooner (read from memory; None for
        an unknown session). What holds a session open (an admin page's websocket) waits
        this long at most before checking it again, so the end takes effect at once."""
        record = self._lookup(session_id).record
        if record is None:
            return None
        with self._lock:
            last_seen = max(self._seen.get(record.id, record.last_seen_at), record.last_seen_at)
        ends = last_seen + self.idle
        if record.token_id and self._token_expires is not None:
            expires = self._token_expires(record.token_id)
            if expires is not None:
                ends = min(ends, expires)
        return max((ends - self._clock()).total_seconds(), 0.0)

    def _touch(self, record: WebSessionRecord, now: datetime) -> None:
        """Count a use: in memory here, written by the write-behind's next flush. A
        session signed in with a token uses that token, so the token's last use (and
        IP) moves too, exactly as a bearer request's does: the tokens page showed a
        token someone works with daily in the web pages as unused since sign-in."""
        with self._lock:
            self._seen[record.id] = now
        if self._write_behind is not None:
            self._write_behind.session_seen(record.id, now)
            if record.token_id:
                self._write_behind.token_used(record.token_id, now, client_ip_var.get())

    def _require_token(self, record: WebSessionRecord) -> None:
        """A session signed in with a token ends with it (revoked or expired)."""
        alive = self._token_alive
        if record.token_id and alive is not None and not alive(record.token_id):
            raise SessionExpired(
                "The token this session was signed in with was revoked or has expired."
            )

    def _lookup(self, session_id: str) -> _Cached:
        return self._cache.get(
            session_id, lambda: self._load(session_id), keep=lambda e: e.record is not None
        )

    def _load(self, session_id: str) -> _Cached:
        record = self._sessions.get(session_id)
        user: User | None = None
        if record is not None:
            try:
                user = self._users.get(record.user_id)
            except UserNotFound:
                user = None
        group_ids = self._groups.group_ids_of(user.id) if user else frozenset()
        return _Cached(record, user, group_ids)

    def _session(self, record: WebSessionRecord, user: User, groups: frozenset[str]) -> WebSession:
        principal = Principal(
            user_id=user.id,
            email=user.email,
            name=user.name,
            group_ids=groups,
            scopes=frozenset(record.scopes) if record.scopes is not None else SESSION_SCOPES,
            # the token a session was signed in with (None after OIDC): what it does is
            # that token's doing (the bootstrap token's retirement, whoami, kept results)
            token_id=record.token_id,
        )
        return WebSession(
            id=record.id,
            method=record.method,
            created_at=record.created_at,
            principal=principal,
            csrf=self._mac("csrf", record.id),
        )

    # --- CSRF -------------------------------------------------------------------------------

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session: WebSession, submitted: str | None) -> None:
        if not submitted or not hmac.compare_digest(submitted, session.csrf):
            raise CsrfFailed("The form's CSRF token is missing or wrong.")

    def login_csrf(self, nonce: str) -> str:
        """The form token for a page shown before sign-in, bound to a random cookie value."""
        return self._mac("login-csrf", nonce)

    def check_login_csrf(self, nonce: str | None, submitted: str | None) -> None:
        if not nonce or not submitted or not hmac.compare_digest(submitted, self.login_csrf(nonce)):
            raise CsrfFailed("The form's CSRF token is missing or wrong.")
