"""The MCP endpoint, reached by the official ``mcp`` client over streamable HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import DemoServer, LiveServer, add_user, token_for
from tests.mcp_raw import INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.anyio
NOT_A_BOOLEAN = "Input should be a number, not true or false"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def mcp_session(url: str, token: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


async def test_whoami_over_streamable_http(live_server: LiveServer) -> None:
    user = add_user(live_server.services)
    async with mcp_session(
        f"{live_server.base_url}/mcp", token_for(live_server.services, user)
    ) as session:
        tools = (await session.list_tools()).tools
        whoami = next(t for t in tools if t.name == "whoami")
        assert whoami.annotations is not None
        assert whoami.annotations.read_only_hint is True
        assert whoami.annotations.destructive_hint is False
        assert whoami.output_schema is not None and "email" in whoami.output_schema["properties"]
        result = await session.call_tool("whoami", {})
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["email"] == user.email
        assert result.structured_content["groups"] == ["Everyone"]
        assert result.structured_content["is_admin"] is False
        text = result.content[0].text  # type: ignore[union-attr]
        assert text.startswith(f"{user.email}") and "groups: Everyone" in text
        assert not text.lstrip().startswith("{")  # a sentence, not raw JSON


async def test_admin_sees_admin_identity(live_server: LiveServer) -> None:
    async with mcp_session(f"{live_server.base_url}/mcp/", live_server.admin_token) as session:
        result = await session.call_tool("whoami", {})
        assert (
            result.structured_content is not None and result.structured_content["is_admin"] is True
        )


@pytest.mark.parametrize("token", [None, "garbage", "agnes_abcdefghij_" + "x" * 43])
async def test_without_a_valid_token_the_client_cannot_connect(
    live_server: LiveServer, token: str | None
) -> None:
    with pytest.raises(ExceptionGroup) as caught:  # the SDK wraps the refusal in task groups
        async with mcp_session(f"{live_server.base_url}/mcp", token):
            pass
    assert caught.group_contains(MCPError)
    with httpx.Client(base_url=live_server.base_url) as raw:
        headers = dict(MCP_HEADERS)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = raw.post("/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_revoked_token_stops_working_mid_session(live_server: LiveServer) -> None:
    services = live_server.services
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "mcp")
    async with mcp_session(f"{live_server.base_url}/mcp", raw) as session:
        assert not (await session.call_tool("whoami", {})).is_error
        services.tokens.revoke(info.id)
        with pytest.raises(MCPError):  # the 401 surfaces as the SDK's error
            await session.call_tool("whoami", {})


def test_mcp_path_is_served_without_redirect_and_behind_the_host_guard(
    live_server: LiveServer,
) -> None:
    with live_server.client(live_server.admin_token) as client:
        response = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert response.status_code == 200, response.text
        assert "mcp-session-id" in response.headers
        evil = client.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Host": "attacker.example.com"}
        )
        assert evil.status_code == 421
        cross_site = client.post(
            "/mcp",
            json=INITIALIZE,
            headers={**MCP_HEADERS, "Origin": "https://attacker.example.com"},
        )
        assert cross_site.status_code == 403


def test_mcp_refusals_use_the_api_error_shape(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url) as raw:
        for headers in ({}, {"Authorization": "Bearer agnes_abcdefghij_" + "x" * 43}):
            response = raw.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            error = response.json()["error"]
            assert error["code"] in ("unauthenticated", "token_invalid")
            assert "personal access token" in error["hint"]


def test_a_method_mcp_does_not_take_is_a_405_in_the_api_error_shape(
    live_server: LiveServer,
) -> None:
    """PUT, PATCH, HEAD or a plain OPTIONS on /mcp got the SDK's text/plain "Method Not
    Allowed" (no Allow header); every other refusal there is JSON in the API's shape."""
    with live_server.client(live_server.admin_token) as client:
        for method in ("PUT", "PATCH", "HEAD", "OPTIONS"):
            response = client.request(method, "/mcp", headers=MCP_HEADERS)
            assert response.status_code == 405, (method, response.text)
            assert response.headers["allow"] == "GET, POST, DELETE"
            if method != "HEAD":
                assert response.json()["error"]["code"] == "method_not_allowed", method
    with httpx.Client(base_url=live_server.base_url) as anonymous:  # the same, before auth
        assert anonymous.put("/mcp").json()["error"]["code"] == "method_not_allowed"


def test_one_user_holds_only_so_many_sessions(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions opened and never closed used to fill the server's 10,000 and lock every
    user out; a user past mcp_sessions_per_user now loses their own oldest session."""
    monkeypatch.setattr(live_server.services.settings, "mcp_sessions_per_user", 3)
    tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    other = token_for(live_server.services, add_user(live_server.services))
    with live_server.client(other) as them:
        theirs = them.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert theirs.status_code == 200
    with live_server.client(live_server.admin_token) as client:
        opened = []
        for _ in range(5):
            answer = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert answer.status_code == 200, answer.text
            opened.append(answer.headers["mcp-session-id"])

        def status(session: str, http: httpx.Client = client) -> int:
            headers = {
                **MCP_HEADERS,
                "mcp-session-id": session,
                "mcp-protocol-version": "2025-06-18",
            }
            return http.post("/mcp", json=tools_list, headers=headers).status_code

        assert [status(s) for s in opened] == [404, 404, 200, 200, 200]  # the newest three
    with live_server.client(other) as them:
        assert status(theirs.headers["mcp-session-id"], them) == 200  # nobody else's


def test_a_refused_opening_request_ends_no_session(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request without a session id that opens none (not an initialize, or refused for
    its headers) used to end the user's oldest session on its way in, at the limit."""
    monkeypatch.setattr(live_server.services.settings, "mcp_sessions_per_user", 2)
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    with live_server.client(live_server.admin_token) as client:
        opened = [
            client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS).headers["mcp-session-id"]
            for _ in range(2)
        ]

        def status(session: str) -> int:
            headers = {
                **MCP_HEADERS,
                "mcp-session-id": session,
                "mcp-protocol-version": "2025-06-18",
            }
            return client.post("/mcp", json=ping, headers=headers).status_code

        assert client.post("/mcp", json=ping, headers=MCP_HEADERS).status_code == 400
        html_only = {**MCP_HEADERS, "Accept": "text/html"}
        assert client.post("/mcp", json=INITIALIZE, headers=html_only).status_code == 406
        # an initialize whose params are unreadable is answered with a JSON-RPC error:
        # it opened a session all the same, half open, and ended the user's oldest
        bad = {**INITIALIZE, "params": {"capabilities": {}}}
        answer = client.post("/mcp", json=bad, headers=MCP_HEADERS)
        assert answer.json()["error"]["code"] == -32602
        assert "mcp-session-id" not in answer.headers
        assert [status(s) for s in opened] == [200, 200]
        newest = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert newest.status_code == 200
        assert [status(s) for s in [*opened, newest.headers["mcp-session-id"]]] == [404, 200, 200]


def test_a_refused_opening_request_names_no_session(live_server: LiveServer) -> None:
    """A request without a session id that opens none was answered with the id of the
    session the SDK had made for it and discarded at once: a client keeping it got 404."""
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    html_only = {**MCP_HEADERS, "Accept": "text/html"}
    with live_server.client(live_server.admin_token) as client:
        refused = [
            client.post("/mcp", json=ping, headers=MCP_HEADERS),
            client.post("/mcp", json=INITIALIZE, headers=html_only),
            client.post("/mcp", content=b"{not json", headers=MCP_HEADERS),
            client.post("/mcp", json=[INITIALIZE], headers=MCP_HEADERS),
        ]
        assert [answer.status_code for answer in refused] == [400, 406, 400, 400]
        assert [answer.headers.get("mcp-session-id") for answer in refused] == [None] * 4
        opened = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert opened.status_code == 200 and opened.headers["mcp-session-id"]


def _types(schema: dict[str, Any]) -> set[str]:
    """The JSON types an argument's schema admits."""
    kinds = schema.get("type", [])
    found = set(kinds if isinstance(kinds, list) else [kinds])
    for option in schema.get("anyOf", []):
        found |= _types(option)
    return found


async def test_every_number_argument_refuses_true_and_false(demo_server: DemoServer) -> None:
    """pydantic's lax mode read JSON's true as 1: query(limit=true) answered one row and
    describe(n=true) one row, saying nothing. Every tool's number argument refuses it,
    naming the argument."""
    async with mcp_session(f"{demo_server.live.base_url}/mcp", demo_server.analyst_token) as mcp:
        checked = []
        for tool in (await mcp.list_tools()).tools:
            for name, schema in tool.input_schema.get("properties", {}).items():
                kinds = _types(schema)
                if not kinds & {"integer", "number"} or "boolean" in kinds:
                    continue
                for value in (True, False):
                    answer = await mcp.call_tool(tool.name, {name: value})
                    assert answer.isError, (tool.name, name, value)
                    error = (answer.structuredContent or {})["error"]
                    assert error["code"] == "invalid_arguments"
                    assert {
                        "argument": name,
                        "problem": NOT_A_BOOLEAN,
                        "given": json.dumps(value),
                    } in (error["details"]["problems"]), (tool.name, error)
                checked.append(f"{tool.name}.{name}")
        assert {"query.limit", "describe.n", "snapshot_create.ttl_hours"} <= set(checked)


async def test_schema_of_a_snapshot_is_never_a_kept_answer(demo_server: DemoServer) -> None:
    """The server keeps catalog and schema answers while the catalog and grants are the
    same; a snapshot dropped and made again under its name (or expired) does not change
    them, and schema went on describing the old one."""
    async with mcp_session(f"{demo_server.live.base_url}/mcp", demo_server.analyst_token) as mcp:

        async def schema_columns(table: str) -> list[str] | str:
            answer = await mcp.call_tool("schema", {"table": table})
            found = answer.structuredContent or {}
            if answer.isError:
                return str(found["error"]["code"])
            return [c["name"] for c in found["columns"]]

        spec = {"table": "web_sessions", "where": "event_date >= DATE '2026-10-01'"}
        made = await mcp.call_tool(
            "snapshot_create", {**spec, "select": ["session_id", "device"], "name": "remade"}
        )
        assert not made.isError, made.content
        try:
            assert await schema_columns("remade") == ["session_id", "device"]
            await mcp.call_tool("snapshot_drop", {"name": "remade"})
            assert await schema_columns("remade") == "table_not_found"
            await mcp.call_tool(
                "snapshot_create", {**spec, "select": ["event_date"], "name": "remade"}
            )
            assert await schema_columns("remade") == ["event_date"]
        finally:
            await mcp.call_tool("snapshot_drop", {"name": "remade"})
