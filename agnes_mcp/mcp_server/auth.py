"""Bearer-token auth for the MCP endpoint: personal access tokens and OAuth access tokens,
both through ``services.bearer`` (the gate in front has already checked the resource).

The gate (:mod:`agnes_mcp.api.mcp_gate`) verifies each request's token before the MCP app
sees it, and says whom it admitted in :data:`ADMITTED`; the verifier here takes that for
the same token instead of verifying it a second time (its hash, its cache entry, its
user's state: ~7 us a call).
"""

from __future__ import annotations

from contextvars import ContextVar

from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token

from agnes_mcp.auth.principal import Principal
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import AuthenticationError
from agnes_mcp.services import Services

# The raw token the gate admitted for the request being served, and its principal.
ADMITTED: ContextVar[tuple[str, Principal] | None] = ContextVar("agnes_admitted", default=None)


class AgnesTokenVerifier(TokenVerifier):
    """Accepts Agnes personal access tokens and OAuth access tokens; anything else gets the
    MCP 401 challenge."""

    def __init__(self, services: Services, base_url: str | None = None) -> None:
        super().__init__(base_url=base_url)
        self._services = services

    async def verify_token(self, token: str) -> AccessToken | None:
        admitted = ADMITTED.get()
        if admitted is not None and admitted[0] == token:  # verified (and its use recorded)
            principal = admitted[1]
        else:
            try:
                principal = self._services.bearer.authenticate(token, client_ip_var.get())
            except AuthenticationError:
                return None
        return AccessToken(
            token=token,
            client_id=principal.user_id,
            scopes=sorted(principal.scopes),
            subject=principal.user_id,
            claims={"email": principal.email},
        )


def current_principal(services: Services) -> Principal:
    """The caller of the running tool (the verifier already checked the token)."""
    access = get_access_token()
    if access is None:
        raise AuthenticationError("This tool needs a bearer token.")
    return services.bearer.authenticate(access.token, client_ip_var.get(), record_use=False)
