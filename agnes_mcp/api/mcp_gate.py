"""Bearer-token check in front of the MCP endpoint, answering in Agnes's error shape.

FastMCP verifies the token too (and gives tools the caller); this gate runs first so a
missing or bad token gets the same ``{"error": {code, message, hint}}`` body as the REST
API, with the ``401`` MCP clients expect. Personal access tokens and OAuth access tokens
(bound to this ``/mcp`` URL, RFC 8707) are both taken, through ``services.bearer``.
Its ``WWW-Authenticate: Bearer`` challenge names
the protected resource metadata (RFC 9728, served by ``routes.well_known``) in
``resource_metadata`` and, when a token was sent, why it was refused (RFC 6750:
``error`` and ``error_description``).

An admitted request goes straight to the MCP app, with the scope the ``/mcp`` mount would
give it: FastAPI's router would otherwise try each of its ~100 routes first, ~0.13 ms of
event-loop CPU per request (a seventh of a whole cached catalog call; all the middleware
above this gate costs ~0.01 ms).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.api.dependencies import bearer_token
from agnes_mcp.api.json_errors import send_error
from agnes_mcp.api.routes.well_known import MCP_PATH, metadata_url, public_base_url
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import AuthenticationError, MethodNotAllowed
from agnes_mcp.mcp_server.auth import ADMITTED
from agnes_mcp.services import Services

PAT = (
    "'Authorization: Bearer <personal access token>' (create one on /me, or 'agnes admin "
    "token create --user EMAIL')"
)
HINT = (
    "Sign in from your MCP client (OAuth: it finds the server through the "
    f"resource_metadata URL in WWW-Authenticate), or send {PAT}."
)
# With auth.oauth.enabled false there is nothing to sign in to: a client sent there would
# find no authorization server in the metadata.
HINT_WITHOUT_OAUTH = f"Send {PAT}; this server does not offer OAuth sign-in to MCP clients."


def quoted(text: str) -> str:
    """``text`` as an RFC 6750 quoted value: printable ASCII without quote or backslash."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "'" for c in text)


MCP_METHODS = ("GET", "POST", "DELETE")  # what the streamable HTTP transport takes
# Refusals whose own hint says more than the generic one.
KEEP_HINT = frozenset({"token_wrong_resource", "user_inactive"})


class McpAuthGate:
    def __init__(
        self, app: ASGIApp, services: Services, path: str, mcp_app: ASGIApp | None = None
    ) -> None:
        self.app = app
        self.services = services
        self.mount = path.rstrip("/")
        self.prefix = self.mount + "/"
        self.mcp_app = mcp_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in MCP_METHODS:  # the SDK says so in plain text, no Allow
            said = MethodNotAllowed(
                f"{scope['method']} is not allowed on {MCP_PATH}.",
                hint="MCP's streamable HTTP transport takes POST (messages), GET (the "
                "server's event stream) and DELETE (ending a session).",
            )
            await send_error(scope, send, said, {"allow": ", ".join(MCP_METHODS)})
            return
        headers = Headers(scope=scope)
        header = headers.get("authorization")
        try:
            token = bearer_token(header)
        except AuthenticationError as exc:
            # No credentials, or another scheme: no error code (RFC 6750 section 3.1);
            # "Bearer" without a token is a malformed request.
            scheme = (header or "").strip().partition(" ")[0].lower()
            await self._refuse(scope, send, exc, "invalid_request" if scheme == "bearer" else None)
            return
        host = headers.get("host")
        base = public_base_url(self.services.settings, str(scope.get("scheme", "http")), host)
        try:
            principal = self.services.bearer.authenticate(
                token, client_ip_var.get(), resource=base + MCP_PATH
            )
        except AuthenticationError as exc:
            await self._refuse(scope, send, exc, "invalid_token")
            return
        admitted = ADMITTED.set((token, principal))  # FastMCP's verifier takes it from here
        try:
            await self._admitted(scope, receive, send)
        finally:
            ADMITTED.reset(admitted)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mcp_app is None:
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        mounted = {
            **scope,
            "path_params": {},
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + self.mount,
        }
        await self.mcp_app(mounted, receive, send)

    async def _refuse(
        self, scope: Scope, send: Send, exc: AuthenticationError, error: str | None
    ) -> None:
        oauth = self.services.settings.auth.oauth.enabled
        exc.hint = exc.hint if exc.code in KEEP_HINT else HINT if oauth else HINT_WITHOUT_OAUTH
        host = Headers(scope=scope).get("host")
        base = public_base_url(self.services.settings, str(scope.get("scheme", "http")), host)
        params = {"resource_metadata": metadata_url(base)}
        if error is not None:
            params |= {"error": error, "error_description": exc.message}
        challenge = "Bearer " + ", ".join(f'{k}="{quoted(v)}"' for k, v in params.items())
        await send_error(
            scope, send, exc, {"www-authenticate": challenge, "cache-control": "no-store"}
        )
