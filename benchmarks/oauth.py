"""OAuth for MCP clients, as users feel it, against ``agnes demo`` in its own process.

- A query through MCP (``tools/call query``, the demo's revenue by channel: a GROUP BY
  over ``orders``) over raw JSON-RPC on HTTP, with an OAuth access token against the same
  call with a personal access token, interleaved in one loop, same user, same run. The
  OAuth token must cost nothing extra to verify: target p50 and p95 ratios <= 1.05.
  ``whoami`` the same way, where authentication is most of the call.
- The whole sign-in of a fresh client, driven by the official SDK
  (``mcp.client.auth.OAuthClientProvider``): 401, protected-resource and
  authorization-server metadata, registration, ``/authorize``, the consent page answered
  by an already signed-in browser, ``/token``, and the retried ``initialize``; against
  ``initialize`` with a personal access token.
- ``POST /token`` with ``grant_type=refresh_token`` (each call rotates the pair), against
  ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from benchmarks.harness import Result, agnes_server, median, percentile, time_calls

SQL = "SELECT channel, sum(total_amount) AS revenue FROM orders GROUP BY 1 ORDER BY 2 DESC"
CLIENT_NAME = "Agnes benchmark"
# Never listened on: the "browser" below reads the code from the consent's redirect.
REDIRECT_URI = "http://127.0.0.1:53682/callback"
CSRF_FIELD = re.compile(r"name='csrf' value='([^']*)'")
REQUEST_FIELD = re.compile(r"name='request' value='([^']+)'")
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
_ids = itertools.count(1)


# --- the sign-in, as a desktop MCP client and its user's browser do it ------------------


@dataclass
class Memory(TokenStorage):
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
    """The user's browser, signed in to Agnes: follows /authorize and clicks Allow."""

    base_url: str
    cookies: httpx.Cookies
    callback: dict[str, str] = field(default_factory=dict)

    @classmethod
    def signed_in(cls, base_url: str, token: str) -> Browser:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            page = client.get("/auth/login")
            csrf = CSRF_FIELD.search(page.text)
            assert csrf, "the sign-in page has a CSRF field"
            answer = client.post("/auth/token", data={"token": token, "csrf": csrf[1]})
            assert answer.status_code == 303, answer.text
            return cls(base_url, client.cookies)

    async def authorize(self, url: str) -> None:
        async with httpx.AsyncClient(cookies=self.cookies, timeout=30) as client:
            to_consent = await client.get(url)
            assert to_consent.status_code in (302, 303, 307), to_consent.text
            page = await client.get(to_consent.headers["location"])
            csrf, request = CSRF_FIELD.search(page.text), REQUEST_FIELD.search(page.text)
            assert csrf and request, page.text
            answer = await client.post(
                f"{self.base_url}/oauth/consent",
                data={"csrf": csrf[1], "request": request[1], "decision": "allow"},
            )
            assert answer.status_code == 303, answer.text
            query = parse_qs(urlsplit(answer.headers["location"]).query)
            self.callback = {k: v[0] for k, v in query.items()}

    async def code(self) -> AuthorizationCodeResult:
        return AuthorizationCodeResult(
            code=self.callback["code"],
            state=self.callback.get("state"),
            iss=self.callback.get("iss"),
        )


def provider(base_url: str, browser: Browser, storage: Memory) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=f"{base_url}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.authorize,
        callback_handler=browser.code,
    )


async def connect(base_url: str, auth: httpx2.Auth | None, token: str | None = None) -> float:
    """Seconds from nothing to an initialized MCP session (the OAuth sign-in included when
    ``auth`` is a provider with empty storage)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    async with (
        httpx2.AsyncClient(auth=auth, headers=headers, timeout=60) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        return time.perf_counter() - started


async def sign_ins(
    base_url: str, browser: Browser, pat: str, n: int
) -> tuple[list[float], list[float], Memory]:
    """``n`` fresh sign-ins (each registers a client and starts a grant) and ``n``
    PAT connections, interleaved; the first sign-in's storage is kept."""
    flows: list[float] = []
    plain: list[float] = []
    kept: Memory | None = None
    for _ in range(n):
        storage = Memory()
        flows.append(await connect(base_url, provider(base_url, browser, storage)))
        assert storage.tokens is not None and storage.client is not None
        kept = kept or storage
        plain.append(await connect(base_url, None, pat))
    assert kept is not None
    return flows, plain, kept


# --- raw JSON-RPC over HTTP ---------------------------------------------------------------


class RawMcp:
    """One MCP session spoken by hand: initialize, then ``tools/call`` as plain POSTs."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"},
            timeout=60,
        )
        init = self.http.post("/mcp", json=self._message("initialize", INIT_PARAMS))
        init.raise_for_status()
        self.http.headers["mcp-session-id"] = init.headers["mcp-session-id"]
        self.http.headers["mcp-protocol-version"] = init.json()["result"]["protocolVersion"]
        done = self.http.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        assert done.status_code == 202, done.text

    @staticmethod
    def _message(method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(
            "/mcp", json=self._message("tools/call", {"name": tool, "arguments": arguments})
        )
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()["result"]
        assert not result.get("isError"), result
        return result

    def close(self) -> None:
        self.http.close()


INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "agnes-benchmark", "version": "0"},
}


def interleaved(
    a: RawMcp, b: RawMcp, tool: str, arguments: dict[str, Any], n: int, warmup: int = 30
) -> tuple[list[float], list[float]]:
    """``tool`` through ``a`` and ``b`` in turn (who goes first alternates), seconds each."""
    for _ in range(warmup):
        a.call(tool, arguments)
        b.call(tool, arguments)
    first: list[float] = []
    second: list[float] = []
    for i in range(n):
        for session, samples in ((a, first), (b, second))[:: 1 if i % 2 == 0 else -1]:
            started = time.perf_counter()
            session.call(tool, arguments)
            samples.append(time.perf_counter() - started)
    return first, second


def refreshes(base_url: str, storage: Memory, n: int) -> list[float]:
    """``POST /token`` refreshes, each with the refresh token the previous one returned."""
    assert storage.client is not None and storage.tokens is not None
    client = storage.client
    current = {"token": storage.tokens.refresh_token}
    form = {"grant_type": "refresh_token", "client_id": client.client_id or ""}
    if client.client_secret:
        form["client_secret"] = client.client_secret

    with httpx.Client(base_url=base_url, timeout=30) as http:

        def refresh() -> None:
            answer = http.post("/token", data={**form, "refresh_token": current["token"] or ""})
            assert answer.status_code == 200, answer.text
            current["token"] = answer.json()["refresh_token"]

        return time_calls(refresh, n, warmup=5)


def ms(samples: list[float], q: float | None = None) -> float:
    return (median(samples) if q is None else percentile(samples, q)) * 1000


def run(quick: bool = False) -> list[Result]:
    n = 200 if quick else 600
    flows_n = 5 if quick else 10  # each registers a client: stay under 20 an hour per IP
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with agnes_server(data_dir, "demo", "--scale", "0.01") as server:
            base, pat = server.base_url, server.admin_token  # the demo analyst
            browser = Browser.signed_in(base, pat)
            flows, plain, storage = asyncio.run(sign_ins(base, browser, pat, flows_n))
            assert storage.tokens is not None
            oauth = RawMcp(base, storage.tokens.access_token)
            personal = RawMcp(base, pat)
            try:
                who = oauth.call("whoami", {})["structuredContent"]
                assert who["client"] == CLIENT_NAME, who
                same = [
                    s.call("query", {"sql": SQL})["structuredContent"]["rows"]
                    for s in (oauth, personal)
                ]
                assert same[0] == same[1] and len(same[0]) > 1, same
                with_oauth, with_pat = interleaved(oauth, personal, "query", {"sql": SQL}, n)
                who_oauth, who_pat = interleaved(oauth, personal, "whoami", {}, n)
            finally:
                oauth.close()
                personal.close()
            refresh = refreshes(base, storage, n // 4)
            with httpx.Client(base_url=base) as anonymous:
                health = time_calls(lambda: anonymous.get("/healthz"), n // 4)
    name = "MCP tools/call query (GROUP BY) over HTTP, OAuth access token"
    return [
        Result(
            f"{name} (p50)",
            ms(with_oauth),
            "ms",
            "same call, personal access token, interleaved (p50)",
            ms(with_pat),
            "ratio <= 1.05",
            note=f"{n} calls each; {len(same[0])} rows",
        ),
        Result(
            f"{name} (p95)",
            ms(with_oauth, 0.95),
            "ms",
            "same call, personal access token, interleaved (p95)",
            ms(with_pat, 0.95),
            "ratio <= 1.05",
        ),
        Result(
            "MCP tools/call whoami over HTTP, OAuth access token (p50)",
            ms(who_oauth),
            "ms",
            "same call, personal access token, interleaved (p50)",
            ms(who_pat),
            "ratio <= 1.05",
            note=f"the call is little but authentication; p95 {ms(who_oauth, 0.95):.2f} vs "
            f"{ms(who_pat, 0.95):.2f} ms",
        ),
        Result(
            "OAuth sign-in of a fresh SDK client, 401 to initialized (p50)",
            ms(flows),
            "ms",
            "MCP initialize with a personal access token (p50)",
            ms(plain),
            "report",
            note=f"{flows_n} sign-ins: metadata, registration, consent, token; "
            f"slowest {max(flows) * 1000:.0f} ms",
        ),
        Result(
            "POST /token, refresh_token grant with rotation (p50)",
            ms(refresh),
            "ms",
            "GET /healthz (p50)",
            ms(health),
            "report",
            note=f"p95 {ms(refresh, 0.95):.2f} ms over {len(refresh)} refreshes",
        ),
    ]


if __name__ == "__main__":
    import sys

    for r in run(quick="--quick" in sys.argv):
        print(
            f"{r.name}: {r.value:.2f} {r.unit} vs {r.baseline_name}: {r.baseline:.2f} "
            f"({r.ratio:.2f}x; {r.target}){'; ' + r.note if r.note else ''}"
        )
