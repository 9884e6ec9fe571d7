"""Personal access tokens: minting, verifying, revoking.

A token reads ``agnes_<prefix>_<secret>``. The prefix is a public lookup key (shown
in listings); the store keeps only the SHA-256 of the whole token, compared in
constant time. Tokens are 256-bit random, so a fast hash is the right one: there
is nothing to brute-force. Verification reads an in-memory cache that is dropped
whenever the store changes, and records the last use in memory (the write-behind
flushes it), so authenticating never waits on a write.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.errors import (
    AuthenticationError,
    InvalidRequest,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    UserInactive,
)
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.generation_cache import GenerationCache
from agnes_mcp.store.groups import GroupRepository
from agnes_mcp.store.ids import new_id, utcnow
from agnes_mcp.store.tokens import TokenInfo, TokenRecord, TokenRepository
from agnes_mcp.store.users import User, UserRepository
from agnes_mcp.store.write_behind import WriteBehind

TOKEN_PATTERN = re.compile(r"^agnes_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$")
MAX_NAME = 100
CACHE_SIZE = 10_000  # known tokens kept in memory (least recently used go first)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def mint_token() -> tuple[str, str]:
    """A fresh ``(raw token, prefix)``."""
    prefix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
    return f"agnes_{prefix}_{secrets.token_urlsafe(32)}", prefix


@dataclass(frozen=True)
class _Cached:
    record: TokenRecord | None
    user: User | None
    group_ids: frozenset[str]


class TokenService:
    def __init__(
        self,
        store: SystemStore,
        tokens: TokenRepository,
        users: UserRepository,
        groups: GroupRepository,
        write_behind: WriteBehind | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._users = users
        self._groups = groups
        self._write_behind = write_behind
        self._clock = clock
        self._cache: GenerationCache[str, _Cached] = GenerationCache(store, CACHE_SIZE)
        self._by_id: GenerationCache[str, TokenRecord | None] = GenerationCache(store, CACHE_SIZE)
        self._lock = threading.Lock()

    # --- minting and revoking ----------------------------------------------------------

    def create(
        self,
        user_id: str,
        name: str,
        scopes: list[str] | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[TokenInfo, str]:
        """Mint a token; the raw value is returned once and never stored."""
        user = self._users.get(user_id)
        wanted = sorted(set(scopes or [TokenScope.DATA.value]))
        known = {s.value for s in TokenScope}
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise InvalidRequest(
                f"Unknown token scope(s): {', '.join(unknown)}.",
                hint=f"Scopes: {', '.join(sorted(known))}.",
            )
        cleaned = name.strip()
        if not cleaned or len(cleaned) > MAX_NAME:
            raise InvalidRequest(f"A token name needs 1-{MAX_NAME} characters.")
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidRequest("A token's lifetime must be positive.")
        raw, prefix = mint_token()
        now = self._clock()
        record = self._tokens.add(
            token_id=new_id("tok"),
            user_id=user.id,
            name=cleaned,
            prefix=prefix,
            token_hash=hash_token(raw),
            scopes=wanted,
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        return record.info, raw

    def alive(self, token_id: str) -> bool:
        """Whether the token is neither revoked nor expired (what a web session signed in
        with it checks on every request; read from memory while the store is unchanged)."""
        record = self._by_id.get(token_id, lambda: self._tokens.by_id(token_id))
        if record is None or record.info.revoked_at is not None:
            return False
        expires = record.info.expires_at
        return expires is None or expires > self._clock()

    def expires_at(self, token_id: str) -> datetime | None:
        """When the token expires (None: never, or no such token); read from memory."""
        record = self._by_id.get(token_id, lambda: self._tokens.by_id(token_id))
        return record.info.expires_at if record is not None else None

    def revoke(self, token_id: str) -> TokenInfo:
        return self._tokens.revoke(token_id, self._clock()).info

    # --- verifying ----------------------------------------------------------------------

    def authenticate(
        self, raw: str | None, client_ip: str | None = None, *, record_use: bool = True
    ) -> Principal:
        """The principal behind ``raw``, or an :class:`AuthenticationError` subclass."""
        if not raw:
            raise AuthenticationError("This endpoint needs a bearer token.")
        match = TOKEN_PATTERN.match(raw.strip())
        if match is None:
            raise TokenInvalid("The token is not a valid Agnes token.")
        token = match[0]
        cached = self._lookup(match[1])
        record, user = cached.record, cached.user
        # Compare even when the prefix is unknown, so timing does not tell the two apart.
        expected = record.token_hash if record else hash_token("agnes_0000000000_" + "0" * 43)
        if not hmac.compare_digest(hash_token(token), expected) or record is None or user is None:
            raise TokenInvalid("The token is not valid.")
        now = self._clock()
        info = record.info
        if info.revoked_at is not None:
            raise TokenRevoked(f"Token '{info.name}' ({info.prefix}) was revoked.")
        if info.expires_at is not None and info.expires_at <= now:
            raise TokenExpired(f"Token '{info.name}' ({info.prefix}) has expired.")
        if not user.active:
            raise UserInactive(f"The account {user.email} is deactivated.")
        if record_use and self._write_behind is not None:
            self._write_behind.token_used(info.id, now, client_ip)
        return Principal(
            user_id=user.id,
            email=user.email,
            name=user.name,
            group_ids=cached.group_ids,
            scopes=frozenset(info.scopes),
            token_id=info.id,
        )

    def _lookup(self, prefix: str) -> _Cached:
        # Unknown prefixes are not cached: guessing cannot evict real tokens.
        return self._cache.get(
            prefix, lambda: self._load(prefix), keep=lambda entry: entry.record is not None
        )

    def _load(self, prefix: str) -> _Cached:
        record = self._tokens.by_prefix(prefix)
        user = self._users.get(record.info.user_id) if record else None
        group_ids = self._groups.group_ids_of(user.id) if user else frozenset()
        return _Cached(record, user, group_ids)
