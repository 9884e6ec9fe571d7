"""Registered MCP clients (RFC 7591): who may register what, and how a client proves itself.

Redirect URIs are limited to loopback ``http`` (``127.0.0.1``, ``localhost``, ``[::1]``,
any port: a desktop client listens there for the code) and ``https`` URLs; no fragments,
no user info, at most :data:`MAX_REDIRECTS`. A client secret, when the client asks for one,
is stored as its SHA-256 and compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import unicodedata
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import InvalidRedirectUriError, InvalidScopeError, OAuthClientInformationFull
from pydantic import AnyUrl
from starlette.requests import Request

from agnes_mcp.oauth.token_service import OAUTH_SCOPES
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.oauth import OAuthClientRecord

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
MAX_REDIRECTS = 10
MAX_NAME = 100
MAX_URI_CHARS = 2_000  # a redirect URI (it is held with every pending sign-in)
MAX_METADATA_CHARS = 16_384  # all of a client's metadata, as JSON (kept for good)
UNNAMED = "Unnamed MCP client"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# What the authorization response adds to the redirect URI's query (RFC 6749 sections
# 4.1.2 and 4.1.2.1, RFC 9207): each may be in it once only.
RESPONSE_PARAMETERS = frozenset({"code", "state", "iss", "error", "error_description", "error_uri"})


def redirect_problem(uri: str) -> str | None:
    """Why ``uri`` may not be a redirect URI, or ``None`` when it may."""
    if len(uri) > MAX_URI_CHARS:
        return f"A redirect URI may be at most {MAX_URI_CHARS:,} characters."
    parts = urlsplit(uri)
    if parts.fragment:
        return f"{uri}: a redirect URI may not have a fragment"
    if parts.username or parts.password:
        return f"{uri}: a redirect URI may not carry user info"
    taken = sorted(RESPONSE_PARAMETERS & {name for name, _ in parse_qsl(parts.query, True)})
    if taken:  # the answer would carry them twice, and a client may read the planted one
        return (
            f"{uri}: a redirect URI's query may not name the authorization response's own "
            f"parameters ({', '.join(taken)}; RFC 6749 section 3.1.2)"
        )
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS:
        return None
    if parts.scheme == "http":
        return (
            f"{uri}: plain http is allowed only for loopback addresses "
            "(127.0.0.1, localhost, [::1]); use https"
        )
    return f"{uri}: only https:// and loopback http:// redirect URIs are accepted"


def is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def _same_ignoring_loopback_port(registered: str, requested: str) -> bool:
    """RFC 8252 section 7.3: a loopback redirect matches whatever port the client picked,
    and only the port: scheme, user info (``http://evil.example@127.0.0.1/`` would show
    "evil.example" on the consent page), host, path, query and fragment stay the same."""
    a, b = urlsplit(registered), urlsplit(requested)

    def without_port(url: SplitResult) -> tuple[object, ...]:
        return (url.scheme, url.username, url.password, url.hostname, url.path, url.query,
                url.fragment)  # fmt: skip

    return is_loopback(registered) and is_loopback(requested) and without_port(a) == without_port(b)


def default_if_blank(scope: str | None) -> str:
    """A registration's scope: the server's (``data``) when none or an empty one is given
    (RFC 6749 section 3.1: a parameter without a value is as if it were left out)."""
    return scope if scope is not None and scope.strip() else " ".join(OAUTH_SCOPES)


class RegisteredClient(OAuthClientInformationFull):
    """A client as the SDK's handlers see it, with the loopback-port rule and RFC 6749's
    reading of an empty ``scope``."""

    def validate_scope(self, requested_scope: str | None) -> list[str] | None:
        """The scopes asked for; ``None`` (the default) when ``scope`` is absent or empty
        (RFC 6749 section 3.1). A client registered with an empty scope has the default."""
        if requested_scope is None or not requested_scope.strip():
            return None
        allowed = default_if_blank(self.scope).split()
        requested = requested_scope.split()
        for scope in requested:
            if scope not in allowed:
                raise InvalidScopeError(f"Client was not registered with scope {scope}")
        return requested

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and self.redirect_uris:
            wanted = str(redirect_uri)
            for registered in self.redirect_uris:
                if str(registered) == wanted or _same_ignoring_loopback_port(
                    str(registered), wanted
                ):
                    return redirect_uri
            raise InvalidRedirectUriError(
                f"Redirect URI '{redirect_uri}' not registered for client"
            )
        return super().validate_redirect_uri(redirect_uri)


def check_registration(client: OAuthClientInformationFull) -> None:
    """Refuse what this server does not accept (RFC 7591 section 3.2.2 errors)."""
    uris = [str(u) for u in client.redirect_uris or []]
    if not uris:
        raise RegistrationError("invalid_redirect_uri", "At least one redirect URI is needed.")
    if len(uris) > MAX_REDIRECTS:
        raise RegistrationError(
            "invalid_redirect_uri", f"At most {MAX_REDIRECTS} redirect URIs may be registered."
        )
    for uri in uris:
        problem = redirect_problem(uri)
        if problem is not None:
            raise RegistrationError("invalid_redirect_uri", problem)
    if client.client_name is not None and len(client.client_name) > MAX_NAME:
        raise RegistrationError(
            "invalid_client_metadata", f"client_name is longer than {MAX_NAME} characters."
        )
    size = len(json.dumps(client.model_dump(mode="json", exclude_none=True)))
    if size > MAX_METADATA_CHARS:
        raise RegistrationError(
            "invalid_client_metadata",
            f"The client's metadata is {size:,} characters as JSON; at most "
            f"{MAX_METADATA_CHARS:,} are accepted.",
        )


def display_name(client: OAuthClientInformationFull) -> str:
    """The client's name fit to show on the consent page: control and formatting characters
    (bidi overrides, zero-width joiners, which could make one name look like another) are
    dropped and whitespace collapsed."""
    visible = "".join(
        ch for ch in client.client_name or "" if unicodedata.category(ch) not in ("Cc", "Cf")
    )
    name = " ".join(visible.split())
    return name[:MAX_NAME] or UNNAMED


def to_record(client: OAuthClientInformationFull, created_ip: str | None) -> OAuthClientRecord:
    metadata = client.model_dump(mode="json", exclude_none=True)
    metadata.pop("client_secret", None)  # kept only as a hash
    return OAuthClientRecord(
        client_id=client.client_id or "",
        client_name=display_name(client),
        redirect_uris=[str(u) for u in client.redirect_uris or []],
        metadata=metadata,
        secret_hash=secret_hash(client.client_secret) if client.client_secret else None,
        created_at=utcnow(),
        created_ip=created_ip,
    )


def from_record(record: OAuthClientRecord) -> RegisteredClient:
    """The client for the SDK's handlers. Its secret is not known (only the hash is kept),
    so the secret check happens in :class:`HashedSecretAuthenticator`."""
    data: dict[str, Any] = dict(record.metadata)
    data["client_id"] = record.client_id
    data.pop("client_secret", None)
    return RegisteredClient.model_validate(data)


class HashedSecretAuthenticator(ClientAuthenticator):
    """Client authentication at ``/token`` and ``/revoke`` against the stored secret hash:
    ``none`` (public clients, PKCE only), ``client_secret_post`` or ``client_secret_basic``."""

    def __init__(self, provider: Any, secret_hash_of: Any) -> None:
        super().__init__(provider)
        self._secret_hash_of = secret_hash_of  # client_id -> stored hash or None

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        client_id = client_id_of(request, form.get("client_id"))
        if client_id is None:
            raise AuthenticationError("Missing client_id")
        client = await self.provider.get_client(client_id)
        if client is None:
            raise AuthenticationError("Unknown client_id; register the client again.")
        method = client.token_endpoint_auth_method or "client_secret_post"
        if method == "none":
            return client
        provided = _presented_secret(request, form.get("client_secret"), method, client_id)
        expected = self._secret_hash_of(client_id)
        if not expected or not provided:
            raise AuthenticationError("This client must authenticate with its client secret.")
        if not hmac.compare_digest(secret_hash(provided), expected):
            raise AuthenticationError("Invalid client_secret")
        return client


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header (each
    form-urlencoded, RFC 6749 section 2.3.1), or None when the request has no such header."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, secret = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise AuthenticationError("Invalid Basic authentication header") from None
    return unquote(user), unquote(secret)


def basic_challenge(request: Request) -> dict[str, str]:
    """The header a 401 ``invalid_client`` carries when the client authenticated with
    ``Authorization: Basic`` (RFC 6749 section 5.2), else none."""
    if request.headers.get("authorization", "").startswith("Basic "):
        return {"WWW-Authenticate": 'Basic realm="Agnes OAuth"'}
    return {}


def client_id_of(request: Request, posted: object) -> str | None:
    """Who the client says it is: the form's ``client_id``, else the user of its Basic
    header. RFC 6749 (sections 2.3.1 and 4.1.3) asks for ``client_id`` in the form only of a
    client that does not authenticate, so a ``client_secret_basic`` client may name itself
    in the header alone (authlib and requests-oauthlib do)."""
    if isinstance(posted, str) and posted:
        return posted
    basic = basic_credentials(request)
    return basic[0] if basic is not None and basic[0] else None


def _presented_secret(request: Request, posted: object, method: str, client_id: str) -> str | None:
    """The secret the client sent. HTTP Basic is taken from every client that holds a
    secret (RFC 6749 section 2.3.1: the server MUST support it for them), also from one
    registered as ``client_secret_post`` (what a client naming no method gets, while RFC
    7591's default, which many OAuth libraries follow, is Basic); the form's
    ``client_secret`` only from a ``client_secret_post`` one. One method per request."""
    if method not in ("client_secret_basic", "client_secret_post"):
        raise AuthenticationError(f"Unsupported token_endpoint_auth_method: {method}")
    basic = basic_credentials(request)
    if basic is not None:
        user, secret = basic
        if user != client_id:
            raise AuthenticationError("Client ID mismatch in Basic auth")
        if isinstance(posted, str) and posted:
            raise AuthenticationError(
                "The client secret was sent twice (Basic and client_secret); send it once."
            )
        return secret
    if method == "client_secret_basic":
        raise AuthenticationError("Missing Basic authentication in the Authorization header")
    return posted if isinstance(posted, str) else None
