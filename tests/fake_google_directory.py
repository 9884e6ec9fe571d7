"""A local server speaking Google's OAuth token endpoint and Directory API ``groups.list``.

Built from Google's public documentation of the service-account flow ("Using OAuth 2.0
for Server to Server Applications": ``POST /token`` with
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an RS256 ``assertion``)
and of ``GET admin/directory/v1/groups?userKey=…&maxResults=…&pageToken=…``
(``{"kind": "admin#directory#groups", "groups": [...], "nextPageToken": ...}``; errors as
``{"error": {"code", "message", "errors"}}``).

The token endpoint verifies the assertion the way Google does: the signature against the
service account's public key, ``grant_type``, ``iss``, ``aud`` (the token URL), ``scope``,
``sub`` and the lifetime. ``groups.list`` needs a token it issued and pages through a
user's groups ``page_size`` at a time, whatever ``maxResults`` asks for (Google may also
return fewer). Faults are switched on per test.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.threaded_server import ThreadedServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
CLIENT_EMAIL = "agnes-sync@example-project.iam.gserviceaccount.com"
DELEGATED_ADMIN = "workspace-admin@example.com"


@dataclass
class FakeDirectory:
    """The state behind the server: who is in which group, and what was asked."""

    public_key: RSAKey
    client_email: str = CLIENT_EMAIL
    subject: str = DELEGATED_ADMIN
    page_size: int = 2
    memberships: dict[str, list[str]] = field(default_factory=dict)  # user -> group e-mails
    # Faults: ("status", code) / ("garbage", 200) served by groups.list, then cleared if once
    groups_fault: tuple[str, int] | None = None
    # the next this-many groups.list calls answer 403 userRateLimitExceeded, the Directory
    # API's documented rate-limit answer ("slow down ... using exponential backoff")
    rate_limited: int = 0
    retry_after: str | None = None  # the Retry-After header a fault's answer carries
    token_refusal: str | None = None  # an OAuth error code the token endpoint answers with
    issued: set[str] = field(default_factory=set)
    token_requests: int = 0
    group_requests: list[dict[str, str]] = field(default_factory=list)
    refused_assertions: list[str] = field(default_factory=list)  # why each was refused
    lock: threading.Lock = field(default_factory=threading.Lock)
    served: threading.Condition = field(default_factory=threading.Condition)
    token_url: str = ""

    def set_groups(self, user: str, groups: list[str]) -> None:
        with self.lock:
            self.memberships[user.lower()] = list(groups)

    def wait_for_group_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self.served:
            return self.served.wait_for(lambda: len(self.group_requests) >= count, timeout)


def _oauth_error(code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=400)


def _google_error(status: int, message: str, reason: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        },
        status_code=status,
    )


def _check_assertion(fake: FakeDirectory, assertion: str) -> str | None:
    """Why Google would refuse this assertion, or ``None``."""
    try:
        token = jwt.decode(assertion, fake.public_key, algorithms=["RS256"])
    except (JoseError, ValueError):
        return "Invalid JWT Signature."
    claims, now = token.claims, time.time()
    if token.header.get("alg") != "RS256":
        return "Invalid JWT: alg must be RS256."
    if claims.get("iss") != fake.client_email:
        return "Invalid JWT: iss is not the service account."
    if claims.get("aud") != fake.token_url:
        return "Invalid JWT: Failed audience check."
    if claims.get("scope") != SCOPE:
        return "Invalid JWT: scope is not the Directory group read-only scope."
    if claims.get("sub") != fake.subject:
        return "Client is unauthorized to retrieve access tokens using this method."
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "Invalid JWT: iat and exp are required."
    if exp <= now or iat > now + 60 or exp - iat > 3600:
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
    return None


def build_app(fake: FakeDirectory) -> Starlette:
    async def token(request: Request) -> Response:
        form = await request.form()
        with fake.lock:
            fake.token_requests += 1
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        assertion = form.get("assertion")
        problem = (
            _check_assertion(fake, assertion)
            if isinstance(assertion, str)
            else "Missing assertion."
        )
        if problem is not None:
            fake.refused_assertions.append(problem)
            error = "unauthorized_client" if "unauthorized" in problem else "invalid_grant"
            return _oauth_error(error, problem)
        if fake.token_refusal:
            return _oauth_error(fake.token_refusal, "Token refused by the test.")
        access = f"ya29.{secrets.token_urlsafe(24)}"
        with fake.lock:
            fake.issued.add(access)
        return JSONResponse({"access_token": access, "expires_in": 3599, "token_type": "Bearer"})

    async def groups(request: Request) -> Response:
        params = dict(request.query_params)
        with fake.served:
            fake.group_requests.append(params)
            fake.served.notify_all()
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in fake.issued:
            return _google_error(401, "Login Required.", "required")
        with fake.lock:
            limited, fake.rate_limited = fake.rate_limited > 0, max(0, fake.rate_limited - 1)
        if limited:
            return _google_error(
                403,
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per "
                "user' of service 'admin.googleapis.com'.",
                "userRateLimitExceeded",
            )
        fault = fake.groups_fault
        if fault is not None:
            kind, status = fault
            if kind == "garbage":
                return PlainTextResponse("<html>upstream proxy error</html>", status_code=status)
            error = _google_error(status, "Backend Error", "backendError")
            if fake.retry_after is not None:
                error.headers["Retry-After"] = fake.retry_after
            return error
        user = params.get("userKey", "").lower()
        try:
            max_results = int(params.get("maxResults", "200"))
        except ValueError:
            return _google_error(400, "Invalid value for maxResults", "invalid")
        if not 1 <= max_results <= 200:
            return _google_error(400, "Invalid value for maxResults", "invalid")
        with fake.lock:
            member_of = fake.memberships.get(user)
        if member_of is None:
            return _google_error(404, "Resource Not Found: userKey", "notFound")
        offset = 0
        if "pageToken" in params:
            offset = int(json.loads(base64.urlsafe_b64decode(params["pageToken"]))["o"])
        size = min(max_results, fake.page_size)
        page = member_of[offset : offset + size]
        body: dict[str, Any] = {"kind": "admin#directory#groups", "etag": '"fake"'}
        if page:
            body["groups"] = [
                {
                    "kind": "admin#directory#group",
                    "id": f"0{abs(hash(g)) % 10**15:015d}",
                    "email": g,
                    "name": g.split("@")[0].replace("-", " ").title(),
                    "directMembersCount": "3",
                    "description": "",
                    "adminCreated": True,
                }
                for g in page
            ]
        if offset + size < len(member_of):
            body["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"o": offset + size}).encode()
            ).decode()
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route("/token", token, methods=["POST"]),
            Route("/admin/directory/v1/groups", groups, methods=["GET"]),
        ]
    )


class FakeDirectoryServer(ThreadedServer):
    def __init__(self, fake: FakeDirectory) -> None:
        super().__init__(build_app(fake))
        self.fake = fake
        fake.token_url = f"{self.url}/token"

    @property
    def api_url(self) -> str:
        return f"{self.url}/admin/directory/v1"


def service_account_json(
    private_key: RSAKey, token_uri: str, client_email: str = CLIENT_EMAIL
) -> str:
    """A service account's JSON key, shaped like the one Google's console downloads."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "example-project",
            "private_key_id": secrets.token_hex(20),
            "private_key": private_key.as_pem(private=True).decode(),
            "client_email": client_email,
            "client_id": "100000000000000000000",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
        }
    )
