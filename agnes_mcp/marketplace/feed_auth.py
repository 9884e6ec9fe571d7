"""Who is asking for a feed: a personal access token, as git or a browser-less client sends it.

git sends credentials as HTTP Basic (the token is the password; the user name is
ignored, and a token given as the user name with no password is taken too), and only
after a ``401`` whose ``WWW-Authenticate`` offers Basic: so a refusal offers Basic
(realm "Agnes marketplace") first, then Bearer. OAuth access tokens are bound to
``/mcp`` and refused here as the REST API refuses them.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request
from fastapi.responses import JSONResponse

from agnes_mcp.api.error_handlers import error_response
from agnes_mcp.auth.principal import Principal
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import AuthenticationError, TokenInvalid
from agnes_mcp.services import Services

REALM = "Agnes marketplace"
HINT = (
    "Send a personal access token (create one on /me): to git as the password (any user "
    "name) through a credential helper, which 'agnes init' sets up; to other clients as "
    "'Authorization: Bearer <token>'."
)
OAUTH_REFUSED = "This is an OAuth access token: it is bound to the MCP endpoint, /mcp (RFC 8707)."


def feed_token(header: str | None) -> str:
    """The token of an ``Authorization`` header: Basic (password) or Bearer."""
    if not header or not header.strip():
        raise AuthenticationError("The marketplace needs your personal access token.")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationError(
                "The Basic credentials in the Authorization header are not valid."
            ) from exc
        user, _, password = decoded.partition(":")
        token = password.strip() or user.strip()
        if token:
            return token
        raise AuthenticationError("The Basic credentials hold no token.")
    raise AuthenticationError(
        "The Authorization header must read 'Basic <credentials>' or 'Bearer <token>'."
    )


def feed_principal(request: Request, services: Services) -> Principal:
    """The caller, or an :class:`AuthenticationError` (answer it with :func:`refusal`)."""
    token = feed_token(request.headers.get("authorization"))
    if services.bearer.kind_of(token) != "personal":
        raise TokenInvalid(
            OAUTH_REFUSED,
            hint="The marketplace takes personal access tokens; create one on your account "
            "page, /me.",
        )
    return services.tokens.authenticate(token, client_ip_var.get())


def refusal(exc: AuthenticationError) -> JSONResponse:
    """The 401 in the API's error shape, with the challenges git and other clients need.
    The generic hint (send a Bearer header) is the feed's own, which tells a git user
    where the token goes; a specific one (revoked, expired, ...) stays."""
    if exc.hint in (None, AuthenticationError.default_hint):
        exc.hint = HINT
    response = error_response(exc)
    bearer = f'Bearer realm="{REALM}"'
    if exc.code != AuthenticationError.code:  # a token was sent and refused (RFC 6750)
        bearer += f', error="invalid_token", error_description="{exc.code}"'
    response.headers["www-authenticate"] = f'Basic realm="{REALM}"'
    response.headers.append("www-authenticate", bearer)
    response.headers["cache-control"] = "no-store"
    return response
