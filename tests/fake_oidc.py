"""A local OpenID Connect provider speaking the real wire format: discovery, authorize
(redirects back with a code), token (authorization code + PKCE S256, client secret by
HTTP Basic), an RS256 ID token, JWKS and userinfo.

The test chooses the person: ``provider.claims`` are the claims the next ID token
carries (a ``None`` value drops the claim); ``iss``, ``aud``, ``exp``, ``iat`` and
``nonce`` are filled in correctly unless a test overrides them. Faults: ``garbage_discovery``,
``token_error`` (HTTP 500 from the token endpoint), ``sign_with_stranger`` (an RSA key
the JWKS does not publish, under the published ``kid``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from tests.threaded_server import ThreadedServer

CLIENT_ID = "agnes-test-client"
CLIENT_SECRET = "fake-client-secret-0123456789"
KID = "fake-key-1"


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    claims: dict[str, Any]


@dataclass
class FakeOidc:
    url: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    garbage_discovery: bool = False
    token_error: bool = False
    sign_with_stranger: bool = False
    client_secret: str = CLIENT_SECRET
    discovery_issuer: str | None = None  # the issuer discovery names (else its own URL)
    # the person's address and name only at the userinfo endpoint, not in the ID token
    claims_in_userinfo: bool = False
    hidden_claims: tuple[str, ...] = ("email", "email_verified", "name")  # which ones
    userinfo_extra: dict[str, Any] = field(default_factory=dict)  # userinfo says otherwise
    userinfo_sub: str | None = None  # a userinfo answer about someone else
    # token_endpoint_auth_methods_supported; the token endpoint takes only these
    auth_methods: list[str] = field(default_factory=lambda: ["client_secret_basic"])
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": KID}))
    stranger: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": KID})
    )
    # JWKS entries served besides the signing key (RFC 7517 §5: ones a client does not
    # understand or cannot use are to be ignored)
    extra_keys: list[dict[str, Any]] = field(default_factory=list)
    # the JWKS trickles in a byte at a time until the client hangs up (a stalled proxy)
    trickle_jwks: bool = False
    grants: dict[str, _Grant] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def person(self, email: str, **more: Any) -> None:
        """The claims of the next sign-in: a verified address unless ``more`` says otherwise."""
        self.claims = {"sub": "sub-" + email, "email": email, "email_verified": True} | more

    # --- endpoints ----------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        if self.garbage_discovery:
            return PlainTextResponse("<html>maintenance</html>", media_type="text/html")
        return JSONResponse(
            {
                "issuer": self.discovery_issuer or self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": self.auth_methods,
            }
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        problems = [
            name
            for name, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == CLIENT_ID),
                ("redirect_uri", bool(q.get("redirect_uri"))),
                ("scope", "openid" in q.get("scope", "").split()),
                ("state", bool(q.get("state"))),
                ("code_challenge", bool(q.get("code_challenge"))),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
            )
            if not ok
        ]
        if problems:
            return JSONResponse({"error": "invalid_request", "bad": problems}, status_code=400)
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.grants[code] = _Grant(
                q["client_id"], q["redirect_uri"], q.get("nonce"), q["code_challenge"], self.claims
            )
        back = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{q['redirect_uri']}?{back}", status_code=302)

    async def token(self, request: Request) -> Response:
        if self.token_error:
            return PlainTextResponse("upstream exploded", status_code=500)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        self.token_requests.append(form)
        if not self._client_authenticated(request, form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        with self.lock:
            grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if challenge != grant.challenge or form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
        }
        claims.update(grant.claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        hidden = self.hidden_claims if self.claims_in_userinfo else ()
        key = self.stranger if self.sign_with_stranger else self.key
        in_token = {k: v for k, v in claims.items() if k not in hidden}
        id_token = jwt.encode({"alg": "RS256", "kid": KID}, in_token, key)
        access = secrets.token_urlsafe(16)
        self.access[access] = claims
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            }
        )

    def _client_authenticated(self, request: Request, form: dict[str, str]) -> bool:
        """The client secret, as one of ``auth_methods`` sends it (RFC 6749 section 2.3.1)."""
        auth = request.headers.get("authorization", "")
        if "client_secret_basic" in self.auth_methods and auth.startswith("Basic "):
            # base64 of <id>:<secret>, each form-urlencoded first (RFC 6749 section 2.3.1)
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
            return (unquote_plus(user), unquote_plus(password)) == (CLIENT_ID, self.client_secret)
        return (
            "client_secret_post" in self.auth_methods
            and not auth
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == self.client_secret
        )

    async def jwks(self, request: Request) -> Response:
        if self.trickle_jwks:

            async def trickle() -> AsyncIterator[bytes]:
                yield b'{"keys": ['
                while True:
                    await asyncio.sleep(0.2)
                    yield b" "

            return StreamingResponse(trickle(), media_type="application/json")
        return JSONResponse({"keys": [*self.extra_keys, self.key.as_dict(private=False)]})

    async def userinfo(self, request: Request) -> Response:
        access = request.headers.get("authorization", "").removeprefix("Bearer ")
        claims = self.access.get(access)
        if claims is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        about = {k: claims[k] for k in ("sub", "email", "email_verified", "name") if k in claims}
        if self.userinfo_sub is not None:
            about["sub"] = self.userinfo_sub
        about |= self.userinfo_extra
        return JSONResponse(about)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
                Route("/userinfo", self.userinfo),
            ]
        )


class FakeOidcServer(ThreadedServer):
    def __init__(self) -> None:
        self.provider = FakeOidc()
        super().__init__(self.provider.app())
        self.provider.url = self.url

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"
