"""Driving the OAuth sign-in as MCP clients do: the official SDK's ``OAuthClientProvider``
with a "browser" (an HTTP client holding a web session) that follows the authorization
redirect, signs in when sent to the login page, answers the consent page and hands the
code back; and the same steps by hand with raw httpx (``register_client``, ``RawClient``,
``consent``, ``exchange``) for tests that break one step on purpose."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.users import User
from tests.conftest import LiveServer, add_user, register, running_server, token_for
from tests.mcp_raw import INITIALIZE, MCP_HEADERS
from tests.test_signin_token import form_csrf, sign_in_with_token

REQUEST_FIELD = re.compile(r"name='request' value='([^']+)'")
REDIRECT_URI = "http://127.0.0.1:53682/callback"
TABLE = "people"
_addresses = itertools.count(1)


@dataclass
class MemoryStorage(TokenStorage):
    tokens: OAuthToken | None = None
    client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class AuthorizationRefused(Exception):
    """The redirect back to the client carried an error (``access_denied``...), no code."""


def exception_leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as anyio task groups raise them."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in exception_leaves(inner)]
    return [error]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Browser:
    """A browser: follows /authorize to the consent page and answers it. Not signed in
    (``pat`` set, no session cookie), it signs in on the login page it is sent to."""

    base_url: str
    cookies: httpx.Cookies
    decision: str = "allow"
    pat: str | None = None
    seen_consent: list[str] = field(default_factory=list)
    seen_login: list[str] = field(default_factory=list)  # the login URLs it was sent to
    callback: dict[str, str] = field(default_factory=dict)

    @classmethod
    def signed_in(cls, base_url: str, token: str) -> Browser:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            answer = sign_in_with_token(client, token)
            assert answer.status_code == 303, answer.text
            return cls(base_url, client.cookies)

    @classmethod
    def signed_out(cls, base_url: str, token: str) -> Browser:
        return cls(base_url, httpx.Cookies(), pat=token)

    async def authorize(self, url: str) -> None:
        async with httpx.AsyncClient(
            base_url=self.base_url, cookies=self.cookies, timeout=30
        ) as client:
            to_consent = await client.get(url)
            assert to_consent.status_code in (302, 303, 307), to_consent.text
            page = await client.get(to_consent.headers["location"])
            if page.status_code == 303 and self.pat is not None:
                page = await self._sign_in(client, page.headers["location"])
            assert page.status_code == 200, page.text
            self.seen_consent.append(page.text)
            request_id = REQUEST_FIELD.search(page.text)
            assert request_id, "the consent page names its request"
            answer = await client.post(
                "/oauth/consent",
                data={
                    "csrf": form_csrf(page.text),
                    "request": request_id[1],
                    "decision": self.decision,
                },
            )
            assert answer.status_code == 303, answer.text
            location = answer.headers["location"]
            self.callback = {**_query(location), "_location": location}
            self.cookies = client.cookies

    async def _sign_in(self, client: httpx.AsyncClient, login_url: str) -> httpx.Response:
        """Sign in with the token on the login page, then follow it to where it leads."""
        assert self.pat is not None
        self.seen_login.append(login_url)
        login = await client.get(login_url)
        assert login.status_code == 200, login.text
        signed_in = await client.post(
            "/auth/token",
            data={
                "token": self.pat,
                "csrf": form_csrf(login.text),
                "next": _query(login_url).get("next", ""),
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        return await client.get(signed_in.headers["location"])

    async def code(self) -> AuthorizationCodeResult:
        if "error" in self.callback:
            raise AuthorizationRefused(self.callback["error"])
        return AuthorizationCodeResult(
            code=self.callback["code"],
            state=self.callback.get("state"),
            iss=self.callback.get("iss"),
        )


def sdk_provider(server_url: str, browser: Browser, storage: MemoryStorage) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="SDK test client",
            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.authorize,
        callback_handler=browser.code,
    )


# --- a server with one granted table -----------------------------------------------------


@dataclass
class OAuthWorld:
    live: LiveServer
    group_id: str  # the group granted TABLE

    def analyst(self) -> tuple[User, str]:
        """A new user in the group granted TABLE, and a personal access token of theirs."""
        user = add_user(self.live.services, groups=(self.group_id,))
        return user, token_for(self.live.services, user)


@contextmanager
def oauth_world(root: Path, **overrides: object) -> Iterator[OAuthWorld]:
    """A real server with a files source holding ``people.csv``, registered as TABLE and
    granted to one group."""
    files = root / "files"
    files.mkdir()
    (files / "people.csv").write_text("id,name\n1,Ada\n2,Bo\n")
    sources = {"files": {"connector": "files", "options": {"path": str(files)}}}
    with running_server(
        root / "data", sources=sources, scheduler_enabled=False, **overrides
    ) as live:
        services = live.services
        register(services, id=TABLE, source_type="files", source_table="people.csv")
        assert all(r.status == "ok" for r in services.sync.sync_many([TABLE], "test"))
        group = services.groups.add("oauth-readers", "")
        services.grants.add(group.id, ResourceType.TABLE, TABLE, granted_by="test")
        yield OAuthWorld(live, group.id)


# --- the protocol by hand ----------------------------------------------------------------


def pkce() -> tuple[str, str]:
    """A PKCE ``code_verifier`` and its ``S256`` ``code_challenge``."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def new_address() -> str:
    """A distinct client address (TEST-NET-2) for X-Forwarded-For, on servers that trust
    the loopback proxy: registrations are rate-limited per address."""
    return f"198.51.100.{next(_addresses) % 250 + 1}"


def register_client(
    http: httpx.Client,
    redirect_uris: list[str] | None = None,
    *,
    address: str | None = None,
    **metadata: object,
) -> httpx.Response:
    body = {
        "client_name": "Raw test client",
        "redirect_uris": redirect_uris or [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    return http.post("/register", json=body, headers={"X-Forwarded-For": address or new_address()})


@dataclass
class RawClient:
    """A registered client doing the protocol by hand."""

    http: httpx.Client  # anonymous, at the server's base URL
    client_id: str
    client_secret: str | None = None
    redirect_uri: str = REDIRECT_URI

    @classmethod
    def registered(cls, http: httpx.Client, **metadata: object) -> RawClient:
        answer = register_client(http, **metadata)  # type: ignore[arg-type]
        assert answer.status_code == 201, answer.text
        info = answer.json()
        return cls(http, info["client_id"], info.get("client_secret"), info["redirect_uris"][0])

    @property
    def resource(self) -> str:
        return str(self.http.base_url).rstrip("/") + "/mcp"

    def authorize_url(self, challenge: str | None, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": "state-" + secrets.token_hex(4),
            "resource": self.resource,
            **({"code_challenge": challenge} if challenge is not None else {}),
            "code_challenge_method": "S256",
            **extra,
        }
        return f"/authorize?{urlencode(params)}"

    def token(self, **form: str) -> httpx.Response:
        data = {"client_id": self.client_id, **form}
        if self.client_secret is not None and "client_secret" not in form:
            data["client_secret"] = self.client_secret
        return self.http.post("/token", data=data)

    def exchange(self, code: str, verifier: str, **extra: str) -> httpx.Response:
        return self.token(
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
            redirect_uri=self.redirect_uri,
            **extra,
        )

    def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token, **extra)

    def tokens(self, browser: httpx.Client) -> dict[str, str]:
        """The whole dance, allowed: a fresh code exchanged for a token pair."""
        verifier, challenge = pkce()
        callback = consent(browser, self.authorize_url(challenge))
        answer = self.exchange(callback["code"], verifier)
        assert answer.status_code == 200, answer.text
        body: dict[str, str] = answer.json()
        return body


@contextmanager
def signed_in_browser(base_url: str, pat: str) -> Iterator[httpx.Client]:
    """A browser signed in with ``pat`` (its session cookie), for the consent page."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        answer = sign_in_with_token(client, pat)
        assert answer.status_code == 303, answer.text
        yield client


def consent_page(browser: httpx.Client, authorize_url: str) -> httpx.Response:
    """Follow ``/authorize`` to the consent page (asserting it gets there)."""
    to_consent = browser.get(authorize_url)
    assert to_consent.status_code == 302, to_consent.text
    page = browser.get(to_consent.headers["location"])
    assert page.status_code == 200, page.text
    return page


def consent(browser: httpx.Client, authorize_url: str, decision: str = "allow") -> dict[str, str]:
    """Answer the consent for ``authorize_url``; the parameters the client's redirect gets."""
    page = consent_page(browser, authorize_url)
    request_id = REQUEST_FIELD.search(page.text)
    assert request_id
    answer = browser.post(
        "/oauth/consent",
        data={"csrf": form_csrf(page.text), "request": request_id[1], "decision": decision},
    )
    assert answer.status_code == 303, answer.text
    return _query(answer.headers["location"])


def mcp_post(http: httpx.Client, access_token: str, **headers: str) -> httpx.Response:
    """An MCP ``initialize`` with ``access_token``: 200 when the token is taken."""
    return http.post(
        "/mcp",
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {access_token}", **headers},
    )
