"""A session is initialized once: a second ``initialize`` is refused with a JSON-RPC error
on both transports, and the session keeps the protocol version it negotiated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DemoServer
from tests.mcp_raw import initialize
from tests.test_mcp_unreadable_messages import _exchange, _local_mcp, _session

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _initialize(ident: int, version: str) -> dict[str, Any]:
    opening = initialize("twice")
    return {**opening, "id": ident, "params": {**opening["params"], "protocolVersion": version}}


def _refused_as_initialized(answer: dict[str, Any], ident: int, version: str) -> None:
    assert answer["id"] == ident and "result" not in answer, answer
    assert answer["error"]["code"] == -32600
    assert "already initialized" in answer["error"]["message"]
    assert answer["error"]["data"] == {"protocolVersion": version}  # what it still speaks


async def test_a_second_initialize_is_refused_on_stdio(tmp_path: Path) -> None:
    async with _local_mcp(tmp_path) as (process, lines):
        first = await _exchange(process, lines, json.dumps(_initialize(1, "2025-03-26")))
        assert first["result"]["protocolVersion"] == "2025-03-26"
        again = await _exchange(process, lines, json.dumps(_initialize(2, "2025-06-18")))
        _refused_as_initialized(again, 2, "2025-03-26")
        # refused, not renegotiated: the session still speaks 2025-03-26
        third = await _exchange(process, lines, json.dumps(_initialize(3, "2025-06-18")))
        _refused_as_initialized(third, 3, "2025-03-26")
        ping = await _exchange(process, lines, '{"jsonrpc": "2.0", "id": 4, "method": "ping"}')
        assert ping == {"jsonrpc": "2.0", "id": 4, "result": {}}
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0


def test_a_second_initialize_is_refused_over_http(demo_server: DemoServer) -> None:
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-03-26")
    again = httpx.post(url, json=_initialize(2, "2025-06-18"), headers=session, timeout=30)
    _refused_as_initialized(again.json(), 2, "2025-03-26")
    third = httpx.post(url, json=_initialize(3, "2025-06-18"), headers=session, timeout=30)
    _refused_as_initialized(third.json(), 3, "2025-03-26")
    ping = {"jsonrpc": "2.0", "id": 4, "method": "ping"}
    assert httpx.post(url, json=ping, headers=session, timeout=30).json()["result"] == {}
    httpx.delete(url, headers=session, timeout=30)


def test_a_session_speaks_the_version_it_negotiated_over_http(demo_server: DemoServer) -> None:
    """The version header was read afresh on each request: a 2025-06-18 session had its
    batches served when its header said 2025-03-26, or said nothing, and a header of
    2026-07-28 was told about "params._meta ... envelope keys". A header naming another
    version than the session negotiated is refused naming the one to send, and batches
    follow the negotiated version."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-06-18")
    pings = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]
    for version in ("2025-03-26", "2025-11-25", "2026-07-28"):
        ping = {"jsonrpc": "2.0", "id": version, "method": "ping"}
        headers = {**session, "mcp-protocol-version": version}
        refused = httpx.post(url, json=ping, headers=headers, timeout=30)
        assert refused.status_code == 400, refused.text
        assert refused.json()["id"] == version and refused.json()["error"]["code"] == -32600
        assert refused.json()["error"]["data"] == {"negotiated": "2025-06-18", "requested": version}
        assert "MCP-Protocol-Version: 2025-06-18" in refused.json()["error"]["message"]
        batch = httpx.post(url, json=pings, headers=headers, timeout=30)
        assert batch.status_code == 400 and "error" in batch.json(), batch.text
    unnamed = httpx.post(url, json=pings, headers=session, timeout=30)  # no header: no batch
    assert unnamed.status_code == 400 and unnamed.json()["error"]["code"] == -32600
    named = {**session, "mcp-protocol-version": "2025-06-18"}
    assert httpx.post(url, json=pings[0], headers=named, timeout=30).json()["result"] == {}
    httpx.delete(url, headers=session, timeout=30)
    # a 2025-03-26 session takes batches with its header or without
    older = _session(url, demo_server.analyst_token, "2025-03-26")
    for headers in (older, {**older, "mcp-protocol-version": "2025-03-26"}):
        answered = httpx.post(url, json=pings, headers=headers, timeout=30)
        assert answered.status_code == 200 and answered.json()[0]["result"] == {}
    httpx.delete(url, headers=older, timeout=30)


def test_a_get_asking_to_resume_opens_the_stream_over_http(demo_server: DemoServer) -> None:
    """The server keeps no events to replay: a GET with Last-Event-ID (a client
    reconnecting its event stream) was answered 500, the SDK returning without an answer.
    It opens the session's event stream, from now."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = {
        **_session(url, demo_server.analyst_token, "2025-06-18"),
        "mcp-protocol-version": "2025-06-18",
        "Accept": "text/event-stream",
        "Last-Event-ID": "abc",
    }
    with httpx.stream("GET", url, headers=session, timeout=30) as stream:
        assert stream.status_code == 200, stream.read()
        assert stream.headers["content-type"].startswith("text/event-stream")
    httpx.delete(url, headers=session, timeout=30)
