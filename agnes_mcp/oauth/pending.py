"""What lives between ``/authorize`` and ``/token``, in memory: authorization requests
waiting for the user's consent (10 minutes) and authorization codes (5 minutes, single use).

Both are short-lived by design; a restart loses them and the client simply starts the
sign-in again. Codes are kept by their SHA-256, and a used code is remembered until it
expires, so a second use is recognised (and the grant it produced is revoked, OAuth 2.1
section 4.1.3).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

REQUEST_SECONDS = 600
CODE_SECONDS = 300
MAX_ENTRIES = 10_000  # an /authorize flood cannot grow memory past this
PER_CLIENT = 100  # consent requests one registered client may have waiting


@dataclass(frozen=True)
class PendingAuthorization:
    """An ``/authorize`` request the SDK's handler validated, waiting for consent."""

    id: str
    client_id: str
    client_name: str
    redirect_uri: str
    redirect_uri_provided_explicitly: bool
    state: str | None
    scopes: list[str]
    code_challenge: str
    resource: str
    issuer: str
    expires_at: float


@dataclass(frozen=True)
class IssuedCode:
    client_id: str
    client_name: str
    user_id: str
    redirect_uri: str
    redirect_uri_provided_explicitly: bool
    scopes: list[str]
    code_challenge: str
    resource: str
    expires_at: float
    used_by_grant: str | None = None  # set once exchanged
    used: bool = False


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclass
class _Bounded:
    """An ordered dict of entries with an expiry, capped in size. With ``group_of`` (the
    client an entry belongs to), one group holds at most ``per_group`` entries, and when
    the store is full the group holding the most gives up its oldest first: an
    ``/authorize`` flood from one client (or a few) never pushes out another's sign-in."""

    clock: Callable[[], float]
    group_of: Callable[[object], str] | None = None
    per_group: int = PER_CLIENT
    entries: OrderedDict[str, tuple[float, object]] = field(default_factory=OrderedDict)
    groups: Counter[str] = field(default_factory=Counter)

    def put(self, key: str, expires_at: float, value: object) -> None:
        now = self.clock()
        while self.entries:  # the expired go first (they are ordered by age)
            first_key, (first_expiry, _) = next(iter(self.entries.items()))
            if first_expiry > now:
                break
            self._drop(first_key)
        if self.group_of is not None:
            group = self.group_of(value)
            if self.groups[group] >= self.per_group:
                self._drop(self._oldest_of(group))
        while len(self.entries) >= MAX_ENTRIES:
            if self.group_of is None:
                self._drop(next(iter(self.entries)))
            else:
                heaviest = max(self.groups, key=self.groups.__getitem__)
                self._drop(self._oldest_of(heaviest))
        self.entries[key] = (expires_at, value)
        if self.group_of is not None:
            self.groups[self.group_of(value)] += 1

    def pop(self, key: str) -> tuple[float, object] | None:
        hit = self.entries.get(key)
        if hit is not None:
            self._drop(key)
        return hit

    def _oldest_of(self, group: str) -> str:
        assert self.group_of is not None
        return next(k for k, (_, v) in self.entries.items() if self.group_of(v) == group)

    def _drop(self, key: str) -> None:
        _, value = self.entries.pop(key)
        if self.group_of is not None:
            group = self.group_of(value)
            self.groups[group] -= 1
            if self.groups[group] <= 0:
                del self.groups[group]


def _client_of(value: object) -> str:
    return str(getattr(value, "client_id", ""))


class PendingStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requests = _Bounded(clock, group_of=_client_of)
        self._codes = _Bounded(clock)

    # --- consent requests ---------------------------------------------------------------

    def add_request(self, request: PendingAuthorization) -> None:
        with self._lock:
            self._requests.put(request.id, request.expires_at, request)

    def new_request_id(self) -> str:
        return secrets.token_urlsafe(24)

    def request(self, request_id: str) -> PendingAuthorization | None:
        with self._lock:
            hit = self._requests.entries.get(request_id)
        if hit is None or hit[0] <= self._clock():
            return None
        value = hit[1]
        assert isinstance(value, PendingAuthorization)
        return value

    def take_request(self, request_id: str) -> PendingAuthorization | None:
        """The request, removed: one consent answers it once."""
        with self._lock:
            hit = self._requests.pop(request_id)
        if hit is None or hit[0] <= self._clock():
            return None
        value = hit[1]
        assert isinstance(value, PendingAuthorization)
        return value

    # --- codes --------------------------------------------------------------------------

    def add_code(self, code: IssuedCode) -> str:
        raw = secrets.token_urlsafe(32)
        with self._lock:
            self._codes.put(_hash(raw), code.expires_at, code)
        return raw

    def code(self, raw: str) -> IssuedCode | None:
        """The code (used or not) until it expires."""
        with self._lock:
            hit = self._codes.entries.get(_hash(raw))
        if hit is None or hit[0] <= self._clock():
            return None
        value = hit[1]
        assert isinstance(value, IssuedCode)
        return value

    def mark_used(self, raw: str, grant_id: str | None) -> bool:
        """Mark a code exchanged; ``False`` when it had been used already (a replay)."""
        key = _hash(raw)
        with self._lock:
            hit = self._codes.entries.get(key)
            if hit is None:
                return False
            value = hit[1]
            assert isinstance(value, IssuedCode)
            if value.used:
                return False
            self._codes.entries[key] = (hit[0], replace(value, used=True, used_by_grant=grant_id))
        return True

    def set_grant(self, raw: str, grant_id: str) -> None:
        key = _hash(raw)
        with self._lock:
            hit = self._codes.entries.get(key)
            if hit is not None:
                value = hit[1]
                assert isinstance(value, IssuedCode)
                self._codes.entries[key] = (hit[0], replace(value, used_by_grant=grant_id))
