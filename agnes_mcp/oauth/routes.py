"""The authorization server's HTTP endpoints, at the root of the host app.

``/.well-known/oauth-authorization-server`` (RFC 8414) answers with the issuer the
client reached (``public_url`` when set); ``/authorize``, ``/token``, ``/register``
(RFC 7591, rate-limited per client IP) are the MCP SDK's handlers (its own ``TokenHandler``,
which answers RFC 6749 section 5.2's statuses: ``invalid_grant`` is 400, not the 401
fastmcp's subclass turns it into; 401 is ``invalid_client`` only, with a ``Basic``
challenge when the client sent that header) over
:class:`~agnes_mcp.oauth.provider.AgnesAuthorizationServer`; ``/revoke`` (RFC 7009) is
ours (:mod:`agnes_mcp.oauth.revocation`). The consent
page is :mod:`agnes_mcp.oauth.consent_routes`. With ``auth.oauth.enabled`` false none
of this is mounted and the protected-resource metadata names no authorization server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError
from mcp.server.auth.routes import build_metadata, cors_middleware
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp

from agnes_mcp.api.docs_assets import DOCS_PATH
from agnes_mcp.api.error_shapes import ErrorShape, error_shapes_of
from agnes_mcp.api.request_body import body_once
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.oauth.clients import HashedSecretAuthenticator, basic_challenge, client_id_of
from agnes_mcp.oauth.consent_page import problem_page
from agnes_mcp.oauth.provider import AgnesAuthorizationServer
from agnes_mcp.oauth.request_base import base_of, mcp_resource, request_base_var
from agnes_mcp.oauth.revocation import Revocation
from agnes_mcp.oauth.token_service import OAUTH_SCOPES, normalize_resource
from agnes_mcp.signin.rate_limit import RateLimiter
from agnes_sync.errors import AgnesError
from agnes_sync.url_host import url_host_problem

METADATA_PATH = "/.well-known/oauth-authorization-server"
GRANT_TYPES = ("authorization_code", "refresh_token")
AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"  # noqa: S105 - a path
REGISTER_PATH = "/register"
REVOKE_PATH = "/revoke"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CLIENT_PATHS = (TOKEN_PATH, REGISTER_PATH, REVOKE_PATH)  # answered in OAuth's error shape

Endpoint = Callable[[Request], Awaitable[Response]]


def oauth_error_body(error: AgnesError) -> dict[str, Any]:
    """An error a layer before the OAuth handlers raised (a body over the size limit, a
    disallowed Host, a wrong method) as RFC 6749 section 5.2 shapes it; the code is the
    closest one OAuth names."""
    if error.status in (429, 503):
        code = "temporarily_unavailable"
    elif error.status >= 500:
        code = "server_error"
    else:
        code = "invalid_request"
    said = error.message if error.hint is None else f"{error.message} {error.hint}"
    return {"error": code, "error_description": said}


OAUTH_ERROR_SHAPE = ErrorShape(oauth_error_body, {"cache-control": "no-store"})


def with_issuer(location: str, issuer: str) -> str:
    """``location`` with ``iss`` added when it carries an authorization error and no
    ``iss`` yet (a success's code redirect is built with it already)."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {name for name, _ in query}
    if "error" not in names or "iss" in names:
        return location
    return urlunsplit(parts._replace(query=urlencode([*query, ("iss", issuer)])))


async def with_client_id(request: Request) -> Request:
    """``request``, or when its form names no ``client_id`` but its Basic header does, the
    same request with that ``client_id`` added to the form: the SDK's token handler reads
    the client from the form only (see :func:`~agnes_mcp.oauth.clients.client_id_of`)."""
    form = await request.form()
    if form.get("client_id"):
        return request
    try:
        client_id = client_id_of(request, None)
    except AuthenticationError:
        return request  # the authenticator refuses the header, in the token error's format
    if client_id is None:
        return request
    fields = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    return _with_form(request, [*fields, ("client_id", client_id)])


def _with_form(request: Request, fields: list[tuple[str, str]]) -> Request:
    """The same request with ``fields`` as its (url-encoded) form body."""
    body = urlencode(fields).encode("utf-8")
    scope = dict(request.scope)
    replaced = (b"content-length", b"content-type")
    scope["headers"] = [
        (name, value) for name, value in request.scope["headers"] if name not in replaced
    ] + [
        (b"content-length", str(len(body)).encode("ascii")),
        (b"content-type", b"application/x-www-form-urlencoded"),
    ]
    return Request(scope, body_once(body))


async def without_blank_parameters(request: Request) -> Request:
    """``request`` without the parameters sent with no value: RFC 6749 section 3.1 says
    they "MUST be treated as if they were omitted from the request" (``scope=`` is the
    default scope, ``redirect_uri=`` the one registered, ``code_challenge_method=`` S256),
    where the SDK's handler refused them."""
    if request.method == "GET":
        items = list(request.query_params.multi_items())
        kept = [(name, value) for name, value in items if value != ""]
        if len(kept) == len(items):
            return request
        scope = dict(request.scope)
        scope["query_string"] = urlencode(kept).encode("ascii")
        return Request(scope, request.receive)
    form = await request.form()
    fields = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    kept = [(name, value) for name, value in fields if value != ""]
    return request if len(kept) == len(fields) else _with_form(request, kept)


def redirect_mismatch_as_invalid_grant(answer: Response) -> Response:
    """``answer``, or when it refuses a code because the ``redirect_uri`` differs from the
    authorization request's, the same refusal as ``invalid_grant``: RFC 6749 section 5.2
    names that case there (the SDK's handler answers ``invalid_request``, which a client
    reads as its own malformed request, not as a code it cannot use)."""
    if answer.status_code != 400:
        return answer
    try:
        body = json.loads(bytes(answer.body))
    except ValueError:
        return answer
    described = str(body.get("error_description") or "")
    if body.get("error") != "invalid_request" or "redirect_uri" not in described:
        return answer
    body["error"] = "invalid_grant"
    body["error_description"] = (
        "redirect_uri differs from the one the authorization request named; "
        "send the same redirect_uri, or start a new authorization."
    )
    return JSONResponse(body, status_code=400, headers=NO_STORE)


def _for_a_person(answer: Response, instance_name: str) -> Response:
    """An authorization request refused without a redirect (an unknown client or redirect
    URI: RFC 6749 section 4.1.2.1 says to tell the person, not the client) as a page a
    browser shows, not a JSON body: the person is in front of it, and their application
    waits for an answer that will not come."""
    try:
        said = str(json.loads(bytes(answer.body)).get("error_description") or "")
    except ValueError:
        said = ""
    return problem_page(
        "Sign-in request refused",
        f"{said or 'The application sent a request this server cannot answer.'} Nothing was "
        "allowed. Go back to your application and connect again; if this happens again, "
        "remove this server from the application and add it back (it may hold a "
        "registration this server no longer knows).",
        instance_name,
        status_code=400,
    )


# What an authorization request may carry (each is held with its pending sign-in until
# consent): a PKCE S256 challenge is 43 characters (RFC 7636 allows 43-128); a state is
# the client's own opaque value, a few dozen characters in practice.
MAX_STATE_CHARS = 2_048
CHALLENGE_CHARS = (43, 128)
MAX_PARAM_CHARS = 4_096  # any other parameter


async def _oversized(request: Request) -> str | None:
    """Why the request's parameters are refused before the handler, or None."""
    try:
        params = request.query_params if request.method == "GET" else await request.form()
    except Exception:  # noqa: BLE001 - Starlette's form parser refuses a part over 1 MB
        return "The authorization request's form could not be read (a field too large?)."
    state = params.get("state")
    if isinstance(state, str) and len(state) > MAX_STATE_CHARS:
        return f"state may be at most {MAX_STATE_CHARS:,} characters."
    challenge = params.get("code_challenge")
    low, high = CHALLENGE_CHARS
    if isinstance(challenge, str) and not low <= len(challenge) <= high:
        return f"code_challenge must be {low} to {high} characters (RFC 7636)."
    for name, value in params.multi_items():
        if isinstance(value, str) and len(value) > MAX_PARAM_CHARS and name != "state":
            return f"{name} may be at most {MAX_PARAM_CHARS:,} characters."
    return None


def client_cors(handle: Endpoint, methods: list[str]) -> ASGIApp:
    """CORS for an endpoint a browser client posts to (``/token``, ``/register``,
    ``/revoke``): the SDK's own allows only ``MCP-Protocol-Version`` besides the safelisted
    headers, so a preflight naming ``Authorization`` (a ``client_secret_basic`` client, the
    MCP TypeScript SDK's first choice when it holds a secret) was refused and the browser
    never sent the request. ``WWW-Authenticate`` (an ``invalid_client``'s challenge) can
    be read. No cookies are involved: ``*`` says no more than that anyone may ask."""
    return CORSMiddleware(
        app=request_response(handle),
        allow_origins=["*"],
        allow_methods=methods,
        allow_headers=["authorization", "mcp-protocol-version"],
        expose_headers=["www-authenticate"],
    )


def install_oauth(app: FastAPI, server: AgnesAuthorizationServer) -> None:
    """Mount the authorization server on ``app`` (the consent pages come with it)."""
    from agnes_mcp.oauth import consent_routes

    settings = server.services.settings
    authenticator = HashedSecretAuthenticator(server, server.secret_hash_of)
    registration = ClientRegistrationOptions(
        enabled=True, valid_scopes=list(OAUTH_SCOPES), default_scopes=list(OAUTH_SCOPES)
    )
    authorize = AuthorizationHandler(server)
    token = TokenHandler(provider=server, client_authenticator=authenticator)
    register = RegistrationHandler(server, options=registration)
    revoke = Revocation(server, authenticator)
    limiter = RateLimiter(settings.auth.oauth.registrations_per_hour, 3600)

    def based(handle: Endpoint) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            marker = request_base_var.set(base_of(settings, request))
            try:
                return await handle(request)
            finally:
                request_base_var.reset(marker)

        return endpoint

    async def metadata(request: Request) -> Response:
        base = base_of(settings, request)
        document = build_metadata(
            AnyHttpUrl(base),
            AnyHttpUrl(base + DOCS_PATH),
            registration,
            RevocationOptions(enabled=True),
        ).model_dump(mode="json", exclude_none=True)
        document["issuer"] = base  # exactly the string the resource metadata names
        document["grant_types_supported"] = list(GRANT_TYPES)  # what /token takes
        document["scopes_supported"] = list(OAUTH_SCOPES)
        document["authorization_response_iss_parameter_supported"] = True
        document["token_endpoint_auth_methods_supported"] = [
            "none",
            "client_secret_post",
            "client_secret_basic",
        ]
        document["revocation_endpoint_auth_methods_supported"] = document[
            "token_endpoint_auth_methods_supported"
        ]
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})

    async def token_endpoint(request: Request) -> Response:
        form = await request.form()  # cached on the request: the handler reads the same form
        grant_type = form.get("grant_type")
        if grant_type not in GRANT_TYPES:  # RFC 6749 section 5.2, said in words
            return JSONResponse(
                {
                    "error": "unsupported_grant_type" if grant_type else "invalid_request",
                    "error_description": (
                        f"grant_type '{str(grant_type)[:80]}' is not supported here"
                        if grant_type
                        else "grant_type is required"
                    )
                    + f"; use one of: {', '.join(GRANT_TYPES)}.",
                },
                status_code=400,
                headers=NO_STORE,
            )
        wanted = form.get("resource")
        expected = mcp_resource(base_of(settings, request))
        if isinstance(wanted, str) and wanted and normalize_resource(wanted) != expected:
            return JSONResponse(
                {
                    "error": "invalid_target",
                    "error_description": f"This server issues tokens for {expected} only.",
                },
                status_code=400,
                headers=NO_STORE,
            )
        answer: Response = await token.handle(
            await with_client_id(await without_blank_parameters(request))
        )
        if answer.status_code == 401:
            answer.headers.update(basic_challenge(request))
        if form.get("redirect_uri"):  # a missing one stays invalid_request (a required field)
            return redirect_mismatch_as_invalid_grant(answer)
        return answer

    async def authorize_endpoint(request: Request) -> Response:
        """The SDK's handler; an error it sends back to the client's redirect URI also
        names the issuer (RFC 9207: the metadata says every authorization response does).
        Parameters too large to hold with a pending sign-in are refused first, here. A
        refusal without a redirect is a page for a browser, JSON for anything else."""
        problem = await _oversized(request)
        answer: Response
        if problem is not None:
            answer = JSONResponse(
                {"error": "invalid_request", "error_description": problem},
                status_code=400,
                headers=NO_STORE,
            )
        else:
            answer = await authorize.handle(await without_blank_parameters(request))
        location = answer.headers.get("location")
        if location and answer.status_code in (302, 303):
            answer.headers["location"] = with_issuer(location, base_of(settings, request))
        if answer.status_code == 400 and "text/html" in request.headers.get("accept", ""):
            return _for_a_person(answer, settings.instance_name)
        return answer

    async def register_endpoint(request: Request) -> Response:
        key = client_ip_var.get() or "unknown"
        wait = limiter.retry_after(key)
        if wait is not None:
            return JSONResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "Too many client registrations from this address; "
                    f"retry in {math.ceil(wait)} s.",
                },
                status_code=429,
                headers={"Retry-After": str(math.ceil(wait)), **NO_STORE},
            )
        limiter.failed(key)  # every attempt counts against the window
        problem = await _redirect_host_problem(request)
        if problem is not None:
            return JSONResponse(
                {"error": "invalid_redirect_uri", "error_description": problem},
                status_code=400,
                headers=NO_STORE,
            )
        answer: Response = await register.handle(request)
        answer.headers.update(NO_STORE)  # it may hold the client's secret (RFC 7591 3.2.1)
        return answer

    routes = [
        Route(
            METADATA_PATH, cors_middleware(metadata, ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"]
        ),
        Route(
            METADATA_PATH + "/mcp",
            cors_middleware(metadata, ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
        Route(AUTHORIZE_PATH, based(authorize_endpoint), methods=["GET", "POST"]),
        Route(
            TOKEN_PATH,
            client_cors(based(token_endpoint), ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
        Route(
            REGISTER_PATH,
            client_cors(based(register_endpoint), ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
        Route(
            REVOKE_PATH,
            client_cors(based(revoke.handle), ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
    ]
    app.router.routes.extend(routes)
    error_shapes_of(app).register(CLIENT_PATHS, OAUTH_ERROR_SHAPE)
    app.include_router(consent_routes.router)


async def _redirect_host_problem(request: Request) -> str | None:
    """Why a redirect URI of this registration, as the client wrote it, has a host that is
    not looked up as written ('%xx' escapes, non-ASCII): the SDK's URL type would quietly
    rewrite it (``https://exa%2emple.com/cb`` registered as ``https://exa.mple.com/cb``),
    so the consent page and the client would name different hosts. The one host rule of
    every URL the server is given (:mod:`agnes_sync.url_host`)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None  # the SDK's handler answers it
    uris = body.get("redirect_uris") if isinstance(body, dict) else None
    for uri in uris if isinstance(uris, list) else []:
        if isinstance(uri, str) and urlsplit(uri).scheme.lower() in ("http", "https"):
            problem = url_host_problem(uri)
            if problem is not None:
                return f"{uri}: {problem}"
    return None
