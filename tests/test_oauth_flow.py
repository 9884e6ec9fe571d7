"""An MCP client signs in with OAuth as real clients do: the official ``mcp`` SDK's
``OAuthClientProvider`` against a real server over HTTP, from the first 401 through
discovery, registration, consent, the code exchange, tool calls, refresh and revocation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import unquote, urlsplit

import httpx
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.oauth_harness import (
    TABLE,
    AuthorizationRefused,
    Browser,
    MemoryStorage,
    OAuthWorld,
    RawClient,
    exception_leaves,
    mcp_post,
    oauth_world,
    sdk_provider,
)

pytestmark = pytest.mark.anyio
CLIENT_NAME = "SDK test client"  # what sdk_provider registers as


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthWorld]:
    with oauth_world(tmp_path_factory.mktemp("oauth-flow")) as made:
        yield made


@asynccontextmanager
async def mcp_session(
    base_url: str,
    *,
    auth: OAuthClientProvider | None = None,
    token: str | None = None,
    seen: list[tuple[str, str, int]] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over streamable HTTP; ``seen`` collects every HTTP
    exchange (method, path, status), the SDK's OAuth requests included."""

    async def keep(response: httpx2.Response) -> None:
        if seen is not None:
            request = response.request
            seen.append((request.method, request.url.path, response.status_code))

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(
            auth=auth, headers=headers, timeout=30, event_hooks={"response": [keep]}
        ) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


async def whoami(session: ClientSession) -> dict[str, object]:
    result = await session.call_tool("whoami", {})
    assert not result.is_error, result.content
    content: dict[str, object] | None = result.structured_content
    assert content is not None
    return content


def raw_client(world: OAuthWorld, storage: MemoryStorage, http: httpx.Client) -> RawClient:
    """The SDK's registered client, to speak to /token and /revoke by hand."""
    assert storage.client is not None and storage.client.client_id
    return RawClient(http, storage.client.client_id, storage.client.client_secret)


async def test_the_sdk_signs_in_from_a_401_and_acts_as_the_user(world: OAuthWorld) -> None:
    services, base = world.live.services, world.live.base_url
    user, pat = world.analyst()
    browser = Browser.signed_in(base, pat)
    storage = MemoryStorage()
    seen: list[tuple[str, str, int]] = []
    sql = f"SELECT count(*) AS n FROM {TABLE}"
    async with mcp_session(
        base, auth=sdk_provider(f"{base}/mcp", browser, storage), seen=seen
    ) as session:
        who = await whoami(session)
        answer = await session.call_tool("query", {"sql": sql})
        assert not answer.is_error, answer.content
        assert answer.structured_content is not None
        assert answer.structured_content["rows"] == [[2]]

    # the discovery chain, in order: 401 -> resource metadata -> AS metadata -> register
    # -> (browser: authorize, consent) -> token -> the retried request
    steps = [(method, path, status) for method, path, status in seen if path != "/mcp"]
    assert seen[0] == ("POST", "/mcp", 401)
    assert steps[:4] == [
        ("GET", "/.well-known/oauth-protected-resource/mcp", 200),
        ("GET", "/.well-known/oauth-authorization-server", 200),
        ("POST", "/register", 201),
        ("POST", "/token", 200),
    ]
    assert seen[seen.index(("POST", "/token", 200)) + 1] == ("POST", "/mcp", 200)

    # the consent page named the client and the account; the redirect carried state and iss
    assert CLIENT_NAME in browser.seen_consent[0] and user.email in browser.seen_consent[0]
    assert browser.callback["state"] and browser.callback["iss"] == base
    assert browser.callback["_location"].startswith("http://127.0.0.1:53682/callback?")

    (grant,) = services.oauth.grants(user_id=user.id)
    assert grant.client_name == CLIENT_NAME and grant.active
    assert grant.resource == f"{base}/mcp" and grant.scopes == ["data"]
    assert who["email"] == user.email and who["client"] == CLIENT_NAME
    assert who["token_id"] == grant.id and who["scopes"] == ["data"]
    assert "oauth-readers" in who["groups"]  # type: ignore[operator]

    assert storage.tokens is not None
    assert storage.tokens.access_token.startswith("agnesat_")
    assert storage.tokens.refresh_token is not None
    assert storage.tokens.refresh_token.startswith("agnesrt_")
    assert storage.tokens.expires_in == 3600

    services.write_behind.flush()
    rows = services.audit_log.recent(user_id=user.id)
    (queried,) = [r for r in rows if r.params.get("sql") == sql]
    assert queried.client == CLIENT_NAME and queried.result == "ok"
    assert services.oauth.grant(grant.id).last_used_at is not None
    actions = {r.action for r in rows}
    assert {"oauth.consent", "oauth.token.issue"} <= actions


async def test_a_browser_not_signed_in_is_sent_to_login_and_back(world: OAuthWorld) -> None:
    base = world.live.base_url
    user, pat = world.analyst()
    browser = Browser.signed_out(base, pat)
    async with mcp_session(
        base, auth=sdk_provider(f"{base}/mcp", browser, MemoryStorage())
    ) as session:
        who = await whoami(session)
    assert who["email"] == user.email and who["client"] == CLIENT_NAME
    (login,) = browser.seen_login
    assert login.startswith("/auth/login?next=")
    back_to = unquote(urlsplit(login).query.removeprefix("next="))
    assert back_to.startswith("/oauth/consent?request=")
    # after signing in the browser landed on that very consent page, and answered it
    assert back_to.split("=", 1)[1] in browser.seen_consent[0]
    assert "Allow" in browser.seen_consent[0] and user.email in browser.seen_consent[0]


async def test_deny_sends_access_denied_and_the_state_back(world: OAuthWorld) -> None:
    services, base = world.live.services, world.live.base_url
    user, pat = world.analyst()
    browser = Browser.signed_in(base, pat)
    browser.decision = "deny"
    with pytest.raises(BaseException) as caught:  # the SDK gets no code: its flow ends
        async with mcp_session(base, auth=sdk_provider(f"{base}/mcp", browser, MemoryStorage())):
            pass
    refusals = [e for e in exception_leaves(caught.value) if isinstance(e, AuthorizationRefused)]
    assert [str(e) for e in refusals] == ["access_denied"], caught.value
    assert browser.callback["error"] == "access_denied"
    assert browser.callback["state"] and browser.callback["iss"] == base
    assert "code" not in browser.callback
    assert services.oauth.grants(user_id=user.id) == []
    services.write_behind.flush()
    denied = [r for r in services.audit_log.recent(user_id=user.id) if r.action == "oauth.consent"]
    assert [r.result for r in denied] == ["denied"]


async def test_refresh_rotates_and_the_sdk_keeps_going(world: OAuthWorld) -> None:
    services, base = world.live.services, world.live.base_url
    user, pat = world.analyst()
    storage = MemoryStorage()
    provider = sdk_provider(f"{base}/mcp", Browser.signed_in(base, pat), storage)
    async with mcp_session(base, auth=provider) as session:
        first = await whoami(session)
        assert storage.tokens is not None
        before = storage.tokens
        # the SDK refreshes when it believes its access token expired: make it believe so
        provider.context.token_expiry_time = 1.0
        again = await whoami(session)
        after = storage.tokens
    assert after.access_token != before.access_token
    assert after.refresh_token and after.refresh_token != before.refresh_token
    assert again["token_id"] == first["token_id"]  # same grant, new tokens

    with httpx.Client(base_url=base, timeout=30) as http:
        client = raw_client(world, storage, http)
        # a refresh by hand, with the SDK's latest refresh token: one more rotation
        rotated = client.refresh(after.refresh_token)
        assert rotated.status_code == 200, rotated.text
        pair = rotated.json()
        assert pair["token_type"] == "Bearer" and pair["expires_in"] == 3600
        assert pair["refresh_token"] != after.refresh_token
        assert rotated.headers["cache-control"] == "no-store"
        assert mcp_post(http, pair["access_token"]).status_code == 200
        # the used refresh token is refused (a replay: the grant ends with it)
        reused = client.refresh(after.refresh_token)
        assert reused.json()["error"] == "invalid_grant", reused.text
        assert mcp_post(http, pair["access_token"]).status_code == 401
    grant = services.oauth.grant(str(first["token_id"]))
    assert not grant.active and "used again" in (grant.revoked_why or "")
    assert grant.user_id == user.id


async def test_revocation_ends_the_grant_at_once(world: OAuthWorld) -> None:
    services, base = world.live.services, world.live.base_url
    _, pat = world.analyst()
    storage = MemoryStorage()
    async with mcp_session(
        base, auth=sdk_provider(f"{base}/mcp", Browser.signed_in(base, pat), storage)
    ):
        pass
    assert storage.tokens is not None
    access = storage.tokens.access_token
    with httpx.Client(base_url=base, timeout=30) as http:
        assert mcp_post(http, access).status_code == 200
        client = raw_client(world, storage, http)
        data = {"token": access, "client_id": client.client_id}
        if client.client_secret:
            data["client_secret"] = client.client_secret
        revoked = http.post("/revoke", data=data)
        assert revoked.status_code == 200, revoked.text
        refused = mcp_post(http, access)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_revoked"
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert storage.tokens.refresh_token is not None
        assert client.refresh(storage.tokens.refresh_token).json()["error"] == "invalid_grant"
    grant = services.oauth.grant_of(access)
    assert grant is not None and not grant.active
    assert grant.revoked_why == "revoked by the client (RFC 7009)"


async def test_personal_tokens_work_beside_oauth(world: OAuthWorld) -> None:
    base = world.live.base_url
    user, pat = world.analyst()
    storage = MemoryStorage()
    async with (
        mcp_session(
            base, auth=sdk_provider(f"{base}/mcp", Browser.signed_in(base, pat), storage)
        ) as oauth,
        mcp_session(base, token=pat) as personal,
    ):
        by_oauth = await whoami(oauth)
        by_pat = await whoami(personal)
        counted = await personal.call_tool("query", {"sql": f"SELECT count(*) FROM {TABLE}"})
    assert by_oauth["email"] == by_pat["email"] == user.email
    assert by_pat["client"] is None and by_oauth["client"] == CLIENT_NAME
    assert by_pat["token_id"] != by_oauth["token_id"]
    assert not counted.is_error and counted.structured_content["rows"] == [[2]]


async def test_an_oauth_token_is_refused_by_the_rest_api(world: OAuthWorld) -> None:
    base = world.live.base_url
    _, pat = world.analyst()
    storage = MemoryStorage()
    async with mcp_session(
        base, auth=sdk_provider(f"{base}/mcp", Browser.signed_in(base, pat), storage)
    ):
        pass
    assert storage.tokens is not None
    with httpx.Client(base_url=base, timeout=30) as http:
        bearer = {"Authorization": f"Bearer {storage.tokens.access_token}"}
        refused = http.get("/api/whoami", headers=bearer)
        assert refused.status_code == 401
        error = refused.json()["error"]
        assert error["code"] == "token_invalid"
        assert "bound to the MCP endpoint, /mcp" in error["message"]
        assert "personal access token" in error["hint"]
        assert http.get("/api/whoami", headers={"Authorization": f"Bearer {pat}"}).is_success
