"""One entry point for bearer tokens at ``/mcp``: every kind of token registers here.

A personal access token (``agnes_…``) and an OAuth access token (``agnesat_…``) act the
same once verified: a :class:`Principal` with the user's groups and the token's scopes.
Each kind says which raw values it recognizes; the first that does verifies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import AuthenticationError


@dataclass(frozen=True)
class BearerKind:
    name: str
    recognizes: Callable[[str], bool]
    # (raw token, client IP, expected resource or None, record the use?) -> principal
    authenticate: Callable[[str, str | None, str | None, bool], Principal]


class BearerAuth:
    def __init__(self, fallback: BearerKind) -> None:
        self._kinds: list[BearerKind] = []
        self._fallback = fallback  # verifies (and refuses with its wording) the rest

    def register(self, kind: BearerKind) -> None:
        self._kinds.append(kind)

    def kind_of(self, raw: str) -> str:
        return self._pick(raw.strip()).name

    def authenticate(
        self,
        raw: str | None,
        client_ip: str | None = None,
        *,
        resource: str | None = None,
        record_use: bool = True,
    ) -> Principal:
        """The principal behind ``raw`` at the MCP endpoint whose URL is ``resource``."""
        if not raw:
            raise AuthenticationError("This endpoint needs a bearer token.")
        return self._pick(raw.strip()).authenticate(raw.strip(), client_ip, resource, record_use)

    def _pick(self, raw: str) -> BearerKind:
        for kind in self._kinds:
            if kind.recognizes(raw):
                return kind
        return self._fallback
