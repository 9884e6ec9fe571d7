"""``POST /revoke`` (RFC 7009), our own handler.

The MCP SDK's ``RevocationHandler`` requires a ``client_secret`` form field even from
public clients and ``client_secret_basic`` ones (modelcontextprotocol/python-sdk#3508),
so two of the three client authentication methods this server advertises could not
revoke. Here the client authenticates exactly as at ``/token``; an access or refresh
token of that client's ends its whole grant; anything else (unknown, already revoked,
another client's) gets the same empty 200 the RFC asks for.
"""

from __future__ import annotations

from mcp.server.auth.middleware.client_auth import AuthenticationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agnes_mcp.oauth.clients import HashedSecretAuthenticator, basic_challenge
from agnes_mcp.oauth.provider import AgnesAuthorizationServer

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
HINTS = ("access_token", "refresh_token")


class Revocation:
    def __init__(
        self, server: AgnesAuthorizationServer, authenticator: HashedSecretAuthenticator
    ) -> None:
        self._server = server
        self._authenticator = authenticator

    async def handle(self, request: Request) -> Response:
        try:
            client = await self._authenticator.authenticate_request(request)
        except AuthenticationError as exc:
            return JSONResponse(
                {"error": "invalid_client", "error_description": exc.message},
                status_code=401,
                headers={**NO_STORE, **basic_challenge(request)},
            )
        form = await request.form()
        token = form.get("token")
        hint = form.get("token_type_hint")
        if not isinstance(token, str) or not token.strip():
            return JSONResponse(
                {"error": "invalid_request", "error_description": "The 'token' field is missing."},
                status_code=400,
                headers=NO_STORE,
            )
        if hint is not None and hint not in HINTS:
            return JSONResponse(
                {
                    "error": "unsupported_token_type",
                    "error_description": "token_type_hint is access_token or refresh_token.",
                },
                status_code=400,
                headers=NO_STORE,
            )
        found = await self._server.load_access_token(token)
        if found is not None and found.client_id == client.client_id:
            await self._server.revoke_token(found)
        return Response(status_code=200, headers=NO_STORE)
