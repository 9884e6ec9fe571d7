"""The state of one OIDC sign-in between ``/auth/oidc/start`` and the callback.

``state``, ``nonce``, the PKCE ``code_verifier`` and where to go afterwards travel in a
signed, HttpOnly cookie that lives ``FLOW_SECONDS``; a ``state`` the callback accepted
is remembered until the cookie could no longer be valid, so replaying a callback fails.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from agnes_mcp.signin.problems import SignInRefused

FLOW_COOKIE = "agnes_oidc_flow"
FLOW_PATH = "/auth/oidc"
FLOW_SECONDS = 600
MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    code_verifier: str
    next: str | None
    started: float

    @classmethod
    def new(cls, next_path: str | None, now: float) -> Flow:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),  # 86 characters: within PKCE's 43-128
            next=next_path,
            started=now,
        )

    def dump(self, signer: URLSafeSerializer) -> str:
        return signer.dumps([self.state, self.nonce, self.code_verifier, self.next, self.started])

    @classmethod
    def load(cls, signer: URLSafeSerializer, cookie: str | None, now: float) -> Flow:
        """The flow a cookie holds, or :class:`SignInRefused` (missing, forged, stale)."""
        if not cookie:
            raise SignInRefused(
                "This sign-in was not started in this browser, or it already finished.",
                hint="Start again from the sign-in page (cookies must be enabled).",
            )
        try:
            state, nonce, verifier, next_path, started = signer.loads(cookie)
        except (BadSignature, ValueError, TypeError):
            raise SignInRefused("The sign-in cookie is not valid.") from None
        if not all(isinstance(v, str) for v in (state, nonce, verifier)) or not isinstance(
            started, (int, float)
        ):
            raise SignInRefused("The sign-in cookie is not valid.")
        if now - started > FLOW_SECONDS or started > now + 60:
            raise SignInRefused(
                "The sign-in took longer than 10 minutes.",
                hint="Start again from the sign-in page.",
            )
        return cls(
            state, nonce, verifier, next_path if isinstance(next_path, str) else None, started
        )


class UsedStates:
    """``state`` values already accepted, until they would have expired anyway."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, state: str) -> None:
        """Mark ``state`` used, or :class:`SignInRefused` when it was used before."""
        now = self._clock()
        with self._lock:
            for old, expires in list(self._used.items()):
                if expires > now:
                    break  # insertion order is expiry order
                del self._used[old]
            if state in self._used:
                raise SignInRefused(
                    "This sign-in response was already used.",
                    hint="Start again from the sign-in page.",
                )
            if len(self._used) >= MAX_REMEMBERED:
                self._used.pop(next(iter(self._used)))
            self._used[state] = now + FLOW_SECONDS + 60
