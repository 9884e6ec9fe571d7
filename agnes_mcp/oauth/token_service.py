"""OAuth grants and their tokens: issuing, verifying, rotating, revoking.

An access token reads ``agnesat_<43 url-safe chars>`` and a refresh token
``agnesrt_<...>``; only their SHA-256 is stored. An access token verifies like a
personal access token: the user, their groups and the grant are read through a cache that
is dropped whenever the store changes, so a deactivated user, a removed group membership
or a revoked grant takes effect on the very next call. The grant's last use is recorded in
memory and flushed by the write-behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.errors import (
    OAuthGrantNotFound,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    TokenWrongResource,
    UserInactive,
    UserNotFound,
)
from agnes_mcp.settings import OAuthSettings
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.generation_cache import GenerationCache
from agnes_mcp.store.groups import GroupRepository
from agnes_mcp.store.ids import new_id, utcnow
from agnes_mcp.store.oauth import OAuthGrant, OAuthRepository, OAuthTokenRecord
from agnes_mcp.store.users import User, UserRepository

ACCESS_PREFIX = "agnesat_"
REFRESH_PREFIX = "agnesrt_"
ACCESS_PATTERN = re.compile(r"^agnesat_[A-Za-z0-9_-]{43}$")
REFRESH_PATTERN = re.compile(r"^agnesrt_[A-Za-z0-9_-]{43}$")
CACHE_SIZE = 10_000
OAUTH_SCOPES = (TokenScope.DATA.value,)  # what an MCP client may be granted

logger = logging.getLogger("agnes.oauth")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def normalize_resource(resource: str) -> str:
    """Resource URLs compare without a trailing slash (``…/mcp`` and ``…/mcp/`` are one)."""
    return resource.rstrip("/")


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: list[str]
    grant: OAuthGrant


@dataclass(frozen=True)
class RefreshLookup:
    """A refresh token as the token endpoint needs it."""

    grant: OAuthGrant
    record: OAuthTokenRecord


@dataclass(frozen=True)
class _Cached:
    record: OAuthTokenRecord | None
    grant: OAuthGrant | None
    user: User | None
    group_ids: frozenset[str]


class OAuthTokens:
    def __init__(
        self,
        settings: OAuthSettings,
        store: SystemStore,
        repository: OAuthRepository,
        users: UserRepository,
        groups: GroupRepository,
        on_use: Callable[[str, datetime], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_replay: Callable[[OAuthGrant, str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._repo = repository
        self._users = users
        self._groups = groups
        self._on_use = on_use
        self._on_replay = on_replay  # told of each grant a replay revoked (the audit)
        self._clock = clock
        self._cache: GenerationCache[str, _Cached] = GenerationCache(store, CACHE_SIZE)
        self._lock = threading.Lock()

    @property
    def access_lifetime(self) -> timedelta:
        return timedelta(minutes=self._settings.access_token_minutes)

    @property
    def refresh_lifetime(self) -> timedelta:
        return timedelta(days=self._settings.refresh_token_days)

    # --- issuing ------------------------------------------------------------------------

    def start_grant(
        self, *, user_id: str, client_id: str, client_name: str, scopes: list[str], resource: str
    ) -> IssuedTokens:
        """A new grant (a consent turned into tokens) with its first token pair."""
        user = self._users.get(user_id)
        if not user.active:
            raise UserInactive(f"The account {user.email} is deactivated.")
        grant = OAuthGrant(
            id=new_id("oag"),
            user_id=user_id,
            client_id=client_id,
            client_name=client_name,
            scopes=sorted(set(scopes) & set(OAUTH_SCOPES)) or list(OAUTH_SCOPES),
            resource=normalize_resource(resource),
            created_at=self._clock(),
            last_used_at=None,
            revoked_at=None,
            revoked_why=None,
        )
        with self._store.writing():
            self._repo.add_grant(grant)
            access, refresh, records = self._pair(grant)
            self._repo.add_tokens(records)
        return IssuedTokens(access, refresh, self._expires_in(), grant.scopes, grant)

    def _pair(self, grant: OAuthGrant) -> tuple[str, str, list[OAuthTokenRecord]]:
        now = self._clock()
        access = ACCESS_PREFIX + secrets.token_urlsafe(32)
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        records = [
            OAuthTokenRecord(
                token_hash(access), grant.id, "access", now, now + self.access_lifetime, None
            ),
            OAuthTokenRecord(
                token_hash(refresh), grant.id, "refresh", now, now + self.refresh_lifetime, None
            ),
        ]
        return access, refresh, records

    def _expires_in(self) -> int:
        return int(self.access_lifetime.total_seconds())

    # --- refresh ------------------------------------------------------------------------

    def find_refresh(self, raw: str) -> RefreshLookup | None:
        """The live refresh token ``raw`` names, or ``None``. A refresh token that was
        already rotated is a replay (it leaked, or a client kept an old copy): the whole
        grant is revoked, so neither the thief nor the client keeps access."""
        if not REFRESH_PATTERN.match(raw.strip()):
            return None
        record = self._repo.token(token_hash(raw.strip()))
        if record is None or record.kind != "refresh":
            return None
        grant = self._repo.grant(record.grant_id)
        if grant is None or grant.revoked_at is not None:
            return None
        if record.rotated_at is not None:
            self.revoke_replayed(grant.id, "a rotated refresh token was used again")
            return None
        return RefreshLookup(grant, record)

    def rotate(self, lookup: RefreshLookup) -> IssuedTokens:
        """A new pair for a refresh token, which is used up; a concurrent second use of the
        same token loses and revokes the grant (it is a replay)."""
        user = self._users.get(lookup.grant.user_id)
        if not user.active:
            raise UserInactive(f"The account {user.email} is deactivated.")
        access, refresh, records = self._pair(lookup.grant)
        if not self._repo.rotate(lookup.record.token_hash, self._clock(), records):
            self.revoke_replayed(lookup.grant.id, "a rotated refresh token was used again")
            raise TokenRevoked("This refresh token was already used; the grant is revoked.")
        return IssuedTokens(access, refresh, self._expires_in(), lookup.grant.scopes, lookup.grant)

    # --- revoking -----------------------------------------------------------------------

    def revoke_grant(self, grant_id: str, why: str) -> OAuthGrant:
        return self.revoke_grant_once(grant_id, why)[0]

    def revoke_grant_once(self, grant_id: str, why: str) -> tuple[OAuthGrant, bool]:
        """The grant after revoking it, and whether this call did (False: it had been
        revoked before, and its time and reason stay as they were)."""
        if self._repo.grant(grant_id) is None:
            raise OAuthGrantNotFound(f"No OAuth grant with id '{grant_id}'.")
        changed = self._repo.revoke_grant(grant_id, self._clock(), why)
        grant = self._repo.grant(grant_id)
        assert grant is not None
        return grant, changed

    def revoke_replayed(self, grant_id: str, why: str) -> OAuthGrant:
        """Revoke a grant because one of its codes or refresh tokens came back (it leaked,
        or a client kept an old copy), and say so (the audit log, the server log)."""
        grant = self.revoke_grant(grant_id, why)
        logger.warning("OAuth grant %s of %s revoked: %s", grant.id, grant.client_name, why)
        if self._on_replay is not None:
            self._on_replay(grant, why)
        return grant

    def grant_of(self, raw: str) -> OAuthGrant | None:
        """The grant an access or refresh token belongs to (for RFC 7009 revocation)."""
        text = raw.strip()
        if not (ACCESS_PATTERN.match(text) or REFRESH_PATTERN.match(text)):
            return None
        record = self._repo.token(token_hash(text))
        return self._repo.grant(record.grant_id) if record else None

    def grants(self, *, user_id: str | None = None, active_only: bool = False) -> list[OAuthGrant]:
        return self._repo.grants(user_id=user_id, active_only=active_only)

    def grant(self, grant_id: str) -> OAuthGrant:
        grant = self._repo.grant(grant_id)
        if grant is None:
            raise OAuthGrantNotFound(f"No OAuth grant with id '{grant_id}'.")
        return grant

    # --- verifying access tokens --------------------------------------------------------

    @staticmethod
    def recognizes(raw: str) -> bool:
        return raw.startswith(ACCESS_PREFIX)

    def authenticate(
        self, raw: str, *, resource: str | None = None, record_use: bool = True
    ) -> Principal:
        """The principal an access token acts for; ``resource`` (this request's MCP URL),
        when given, must be the one the token was issued for."""
        text = raw.strip()
        if not ACCESS_PATTERN.match(text):
            raise TokenInvalid("The bearer token is not a valid Agnes OAuth access token.")
        cached = self._lookup(token_hash(text))
        record, grant, user = cached.record, cached.grant, cached.user
        if record is None or record.kind != "access" or grant is None or user is None:
            raise TokenInvalid("The OAuth access token is not valid.")
        now = self._clock()
        if grant.revoked_at is not None:
            raise TokenRevoked(
                f"The OAuth grant for '{grant.client_name}' was revoked.",
                hint="Sign in again from your MCP client.",
            )
        if record.expires_at <= now:
            raise TokenExpired(
                "The OAuth access token has expired.",
                hint="Your MCP client gets a new one with its refresh token, or signs in again.",
            )
        if resource is not None and normalize_resource(resource) != grant.resource:
            here = normalize_resource(resource)
            raise TokenWrongResource(
                f"This OAuth token was issued for {grant.resource}, not {here}."
            )
        if not user.active:
            raise UserInactive(f"The account {user.email} is deactivated.")
        if record_use and self._on_use is not None:
            self._on_use(grant.id, now)
        return Principal(
            user_id=user.id,
            email=user.email,
            name=user.name,
            group_ids=cached.group_ids,
            scopes=frozenset(grant.scopes),
            token_id=grant.id,
            client_name=grant.client_name,
        )

    def _lookup(self, hashed: str) -> _Cached:
        # Unknown tokens are not cached: guessing cannot evict real ones.
        return self._cache.get(
            hashed, lambda: self._load(hashed), keep=lambda entry: entry.record is not None
        )

    def _load(self, hashed: str) -> _Cached:
        record = self._repo.token(hashed)
        grant = self._repo.grant(record.grant_id) if record else None
        user = None
        if grant is not None:
            with contextlib.suppress(UserNotFound):
                user = self._users.get(grant.user_id)
        group_ids = self._groups.group_ids_of(user.id) if user else frozenset()
        return _Cached(record, grant, user, group_ids)
