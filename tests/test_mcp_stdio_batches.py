"""``agnes mcp`` serves the JSON-RPC batches of a 2025-03-26 session, as the HTTP endpoint
does (MCP 2025-03-26: an implementation MUST take them), and refuses them in a session of
a later version, or before ``initialize``, with a JSON-RPC error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agnes_mcp.mcp_server.stdio_batches import MAX_BATCH_MESSAGES
from agnes_mcp.mcp_server.stdio_transport import BATCH_MESSAGE
from tests.conftest import DemoServer
from tests.mcp_raw import initialize
from tests.test_mcp_unreadable_messages import _exchange, _local_mcp, _session

pytestmark = pytest.mark.anyio
NOTIFIED = {
    "jsonrpc": "2.0",
    "method": "notifications/progress",
    "params": {"progressToken": 1, "progress": 1},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _opening(version: str) -> str:
    opening = initialize("batcher")
    return json.dumps({**opening, "params": {**opening["params"], "protocolVersion": version}})


async def test_a_2025_03_26_session_takes_batches_on_stdio(tmp_path: Path) -> None:
    count = {"name": "query", "arguments": {"sql": "SELECT 41 + 1 AS answer"}}
    batch: list[Any] = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        NOTIFIED,
        {"jsonrpc": "2.0", "id": "two", "method": "tools/call", "params": count},
        {"jsonrpc": "2.0", "id": 3, "method": "no/such"},
        {"not": "a message"},
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
    ]
    async with _local_mcp(tmp_path) as (process, lines):
        refused = await _exchange(process, lines, json.dumps(batch[:1]))  # not initialized
        assert refused["error"] == {"code": -32600, "message": BATCH_MESSAGE}
        opened = await _exchange(process, lines, _opening("2025-03-26"))
        assert opened["result"]["protocolVersion"] == "2025-03-26"
        answer = await _exchange(process, lines, json.dumps(batch))
        assert isinstance(answer, list) and len(answer) == 5, answer  # not the notification
        replies = {json.dumps(r.get("id")): r for r in answer if r.get("id") is not None}
        assert replies["1"]["result"] == {}
        assert replies['"two"']["result"]["structuredContent"]["rows"] == [[42]]
        assert replies["3"]["error"]["code"] == -32601
        unanswerable = [r["error"] for r in answer if r.get("id") is None]
        assert [e["code"] for e in unanswerable] == [-32600, -32600]
        assert any('"id" must be' in e["message"] for e in unanswerable)
        empty = await _exchange(process, lines, "[]")
        assert empty["id"] is None and empty["error"]["code"] == -32600
        # a batch of notifications alone is not answered: the next answer is the ping's
        ping = {"jsonrpc": "2.0", "id": 9, "method": "ping"}
        assert process.stdin is not None
        await process.stdin.send(json.dumps([NOTIFIED]).encode() + b"\n")
        assert await _exchange(process, lines, json.dumps(ping)) == {
            "jsonrpc": "2.0",
            "id": 9,
            "result": {},
        }
        await process.stdin.aclose()
        assert await process.wait() == 0


async def test_a_later_session_refuses_batches_on_stdio(tmp_path: Path) -> None:
    async with _local_mcp(tmp_path) as (process, lines):
        opened = await _exchange(process, lines, _opening("2025-06-18"))
        assert opened["result"]["protocolVersion"] == "2025-06-18"
        pings = [{"jsonrpc": "2.0", "id": n, "method": "ping"} for n in (1, 2)]
        refused = await _exchange(process, lines, json.dumps(pings))
        assert refused == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": BATCH_MESSAGE},
        }
        # a list inside a message is no batch: the message is answered as not one
        odd = {"jsonrpc": "2.0", "id": 5, "method": "ping", "params": [1]}
        wrong = await _exchange(process, lines, json.dumps(odd))
        assert wrong["id"] == 5 and wrong["error"]["code"] == -32600
        assert wrong["error"]["message"] != BATCH_MESSAGE
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0


async def test_a_batch_of_too_many_messages_is_refused_whole_on_stdio(tmp_path: Path) -> None:
    """Each message of a batch is served side by side: one batch of 250,000 calls (what
    fits the HTTP body limit) held the server for as long. Past MAX_BATCH_MESSAGES a batch
    is refused whole, saying so, on stdio as over HTTP."""
    async with _local_mcp(tmp_path) as (process, lines):
        assert "result" in await _exchange(process, lines, _opening("2025-03-26"))
        pings = [{"jsonrpc": "2.0", "id": n, "method": "ping"} for n in range(MAX_BATCH_MESSAGES)]
        assert len(await _exchange(process, lines, json.dumps(pings))) == MAX_BATCH_MESSAGES
        more = [*pings, {"jsonrpc": "2.0", "id": "one too many", "method": "ping"}]
        refused = await _exchange(process, lines, json.dumps(more))
        assert refused["id"] is None and refused["error"]["code"] == -32600
        assert refused["error"]["data"] == {"messages": len(more), "limit": MAX_BATCH_MESSAGES}
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0


def test_a_batch_of_too_many_messages_is_refused_whole_over_http(
    demo_server: DemoServer,
) -> None:
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-03-26")
    pings = [{"jsonrpc": "2.0", "id": n, "method": "ping"} for n in range(MAX_BATCH_MESSAGES)]
    assert len(httpx.post(url, json=pings, headers=session, timeout=60).json()) == len(pings)
    more = [*pings, {"jsonrpc": "2.0", "id": "one too many", "method": "ping"}]
    refused = httpx.post(url, json=more, headers=session, timeout=60)
    assert refused.status_code == 400
    assert refused.json()["id"] is None and refused.json()["error"]["code"] == -32600
    assert refused.json()["error"]["data"] == {"messages": len(more), "limit": MAX_BATCH_MESSAGES}
    httpx.delete(url, headers=session, timeout=30)


async def test_a_batch_whose_request_is_cancelled_is_still_answered_on_stdio(
    tmp_path: Path,
) -> None:
    """A cancelled request is never answered (MCP), and the batch holding it waited for
    that answer: the answers to the rest of the batch never came."""
    endless = {
        "name": "query",
        "arguments": {"sql": "SELECT sum(hash(range)) AS s FROM range(1000000000000)"},
    }
    batch = [
        {"jsonrpc": "2.0", "id": "endless", "method": "tools/call", "params": endless},
        {"jsonrpc": "2.0", "id": "ping", "method": "ping"},
    ]
    cancel = {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": "endless", "reason": "the user pressed Escape"},
    }
    async with _local_mcp(tmp_path) as (process, lines):
        assert "result" in await _exchange(process, lines, _opening("2025-03-26"))
        assert process.stdin is not None
        await process.stdin.send(json.dumps(batch).encode() + b"\n")
        answer = await _exchange(process, lines, json.dumps(cancel))
        assert isinstance(answer, list), answer
        assert {"jsonrpc": "2.0", "id": "ping", "result": {}} in answer
        await process.stdin.aclose()
        assert await process.wait() == 0


async def test_a_batch_in_a_batch_is_no_message_on_both_transports(
    tmp_path: Path, demo_server: DemoServer
) -> None:
    """A 2025-03-26 session takes batches, but not one inside another: that element is
    not a message (-32600). Over HTTP it was told batches are not accepted at all."""
    nested: list[Any] = [[], {"jsonrpc": "2.0", "id": 1, "method": "ping"}]
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-03-26")
    over_http = httpx.post(url, json=nested, headers=session, timeout=30).json()
    httpx.delete(url, headers=session, timeout=30)
    async with _local_mcp(tmp_path) as (process, lines):
        assert "result" in await _exchange(process, lines, _opening("2025-03-26"))
        on_stdio = await _exchange(process, lines, json.dumps(nested))
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0
    for answers in (over_http, on_stdio):
        errors = [a["error"] for a in answers if "error" in a]
        assert len(answers) == 2 and len(errors) == 1, answers
        assert errors[0]["code"] == -32600 and errors[0]["message"] != BATCH_MESSAGE
        assert {"jsonrpc": "2.0", "id": 1, "result": {}} in answers


async def test_a_batch_of_two_requests_with_one_id_is_refused_on_both_transports(
    tmp_path: Path, demo_server: DemoServer
) -> None:
    """Over HTTP two requests of one id in a batch were served side by side; the SDK
    keeps one answer stream per id, so one was never answered and the batch hung."""
    twice: list[Any] = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    ]
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-03-26")
    over_http = httpx.post(url, json=twice, headers=session, timeout=60)
    assert over_http.status_code == 400
    httpx.delete(url, headers=session, timeout=30)
    async with _local_mcp(tmp_path) as (process, lines):
        assert "result" in await _exchange(process, lines, _opening("2025-03-26"))
        on_stdio = await _exchange(process, lines, json.dumps(twice))
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0
    for refused in (over_http.json(), on_stdio):
        assert refused["id"] is None and refused["error"]["code"] == -32600, refused
        assert refused["error"]["data"] == {"duplicate_ids": [1]}
