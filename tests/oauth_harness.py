"""Driving the OAuth sign-in as MCP clients do: the official SDK's ``OAuthClientProvider``
with a "browser" (an HTTP client holding a signed-in web session) that follows the
authorization redirect, answers the consent page and hands the code back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from tests.test_signin_token import form_csrf, sign_in_with_token

REQUEST_FIELD = re.compile(r"name='request' value='([^']+)'")
REDIRECT_URI = "http://127.0.0.1:53682/callback"


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


@dataclass
class Browser:
    """A signed-in browser: follows /authorize to the consent page and answers it."""

    base_url: str
    cookies: httpx.Cookies
    decision: str = "allow"
    seen_consent: list[str] = field(default_factory=list)
    callback: dict[str, str] = field(default_factory=dict)

    @classmethod
    def signed_in(cls, base_url: str, token: str) -> Browser:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            answer = sign_in_with_token(client, token)
            assert answer.status_code == 303, answer.text
            return cls(base_url, client.cookies)

    async def authorize(self, url: str) -> None:
        async with httpx.AsyncClient(cookies=self.cookies, timeout=30) as client:
            to_consent = await client.get(url)
            assert to_consent.status_code in (302, 303, 307), to_consent.text
            page = await client.get(to_consent.headers["location"])
            assert page.status_code == 200, page.text
            self.seen_consent.append(page.text)
            request_id = REQUEST_FIELD.search(page.text)
            assert request_id, "the consent page names its request"
            answer = await client.post(
                f"{self.base_url}/oauth/consent",
                data={
                    "csrf": form_csrf(page.text),
                    "request": request_id[1],
                    "decision": self.decision,
                },
            )
            assert answer.status_code == 303, answer.text
            location = answer.headers["location"]
            self.callback = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            self.callback["_location"] = location

    async def code(self) -> AuthorizationCodeResult:
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
