"""Both MCP transports answer a message they cannot read as JSON-RPC 2.0 says: what is not
JSON gets a parse error (-32700), JSON that is not a message an invalid-request error
(-32600; on stdio with its ``id`` when it has one), and a stdio session goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from agnes_mcp.mcp_server.stdio_transport import BATCH_MESSAGE
from tests.conftest import DemoServer, empty_workspace
from tests.mcp_raw import initialize

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]
INITIALIZE = initialize("raw-lines")
ENDLESS = "SELECT sum(hash(range)) AS s FROM range(1000000000000)"  # hours of work


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _local_env(tmp_path: Path) -> dict[str, str]:
    """``agnes mcp``'s environment: a server URL nothing listens on (these calls stay
    local) and a token of the right shape."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        AGNES_SERVER_URL="http://127.0.0.1:9",
        AGNES_TOKEN="agnes_abcdefghij_" + "x" * 43,
        AGNES_CONFIG_HOME=str(tmp_path / ".config"),
        PYTHONPATH=str(REPO),
    )
    return env


@asynccontextmanager
async def _local_mcp(tmp_path: Path) -> AsyncIterator[tuple[Process, BufferedByteReceiveStream]]:
    """``agnes mcp`` in a fresh workspace at ``tmp_path`` and a reader of its answers; a
    hang fails the test (after 120 s) instead of the suite."""
    empty_workspace(tmp_path)
    with anyio.fail_after(120):
        async with await anyio.open_process(
            [sys.executable, "-m", "cli.main", "mcp"], env=_local_env(tmp_path), cwd=tmp_path
        ) as process:
            assert process.stdout is not None and process.stdin is not None
            yield process, BufferedByteReceiveStream(process.stdout)


async def _exchange(process: Process, lines: BufferedByteReceiveStream, line: str) -> Any:
    assert process.stdin is not None
    await process.stdin.send(line.encode() + b"\n")
    return json.loads(await lines.receive_until(b"\n", 1 << 20))


async def test_unreadable_lines_are_answered_and_the_session_goes_on(tmp_path: Path) -> None:
    async with _local_mcp(tmp_path) as (process, lines):
        parse = await _exchange(process, lines, "this is not json")
        assert parse["id"] is None and parse["error"]["code"] == -32700
        assert "not JSON" in parse["error"]["message"]
        wrong = await _exchange(process, lines, '{"jsonrpc": "2.0", "id": 7, "method": 5}')
        assert wrong["id"] == 7 and wrong["error"]["code"] == -32600
        batch = await _exchange(process, lines, "[1, 2]")
        assert batch["id"] is None and batch["error"]["code"] == -32600
        assert batch["error"]["message"] == BATCH_MESSAGE  # not "not a JSON-RPC message"
        started = await _exchange(process, lines, json.dumps(INITIALIZE))
        assert started["id"] == 1 and "serverInfo" in started["result"]
        assert process.stdin is not None
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await process.stdin.send(json.dumps(initialized).encode() + b"\n")
        half = await _exchange(process, lines, '{"jsonrpc": "2.0", "id": 2, "meth')
        assert half["error"]["code"] == -32700
        listed = await _exchange(
            process, lines, json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        )
        assert listed["id"] == 3
        assert "query" in {tool["name"] for tool in listed["result"]["tools"]}
        await process.stdin.aclose()
        assert await process.wait() == 0


@pytest.mark.parametrize(
    ("body", "code", "ident"),
    [
        ("this is not json", -32700, None),
        # the id is read back, as on stdio (it was null over HTTP)
        ('{"jsonrpc": "2.0", "id": 7, "method": 5}', -32600, 7),
        ('{"jsonrpc": "2.0", "id": "x", "method": "tools/call", "params": "q"}', -32600, "x"),
        ("[1, 2]", -32600, None),
        # JSON with a byte order mark (RFC 8259: not JSON): a parse error's id is null,
        # though a lenient reader finds one
        ('\ufeff{"jsonrpc": "2.0", "id": 7, "method": "ping"}', -32700, None),
    ],
)
def test_unreadable_bodies_over_http(
    demo_server: DemoServer, body: str, code: int, ident: object
) -> None:
    answer = httpx.post(
        f"{demo_server.live.base_url}/mcp/",
        content=body,
        headers={
            "Authorization": f"Bearer {demo_server.analyst_token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )
    assert answer.status_code == 400
    assert int(answer.headers["content-length"]) == len(answer.content)
    error = answer.json()["error"]
    assert answer.json()["id"] == ident and error["code"] == code
    assert "pydantic" not in error["message"] and len(error["message"]) < 200


def test_a_batch_is_refused_as_a_batch_over_http(demo_server: DemoServer) -> None:
    """A JSON-RPC batch was told it was "not a JSON-RPC 2.0 message", which it is: MCP
    dropped batches, and the answer now says that."""
    pings = [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in (1, 2)]
    answer = httpx.post(
        f"{demo_server.live.base_url}/mcp/",
        json=pings,
        headers={
            "Authorization": f"Bearer {demo_server.analyst_token}",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": -32600, "message": BATCH_MESSAGE}


def _session(url: str, token: str, version: str) -> dict[str, str]:
    """The headers of an initialised session of protocol ``version`` at ``url``."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    opening = {
        **initialize("batcher"),
        "params": {**initialize()["params"], "protocolVersion": version},
    }
    opened = httpx.post(url, json=opening, headers=headers, timeout=30)
    assert opened.json()["result"]["protocolVersion"] == version
    session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx.post(url, json=initialized, headers=session, timeout=30).status_code == 202
    return session


def test_a_2025_03_26_session_takes_batches_over_http(demo_server: DemoServer) -> None:
    """MCP 2025-03-26 says a server MUST take JSON-RPC batches; the SDK refused every
    batch, in sessions of that version too. Later versions have none and refuse them."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-03-26")
    count = {"name": "query", "arguments": {"sql": "SELECT 41 + 1 AS answer"}}
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": 1, "progress": 1},
        },
        {"jsonrpc": "2.0", "id": "two", "method": "tools/call", "params": count},
        {"jsonrpc": "2.0", "id": 3, "method": "no/such"},
        {"not": "a message"},
    ]
    answer = httpx.post(url, json=batch, headers=session, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["mcp-session-id"] == session["mcp-session-id"]
    replies = {json.dumps(r.get("id")): r for r in answer.json()}
    assert len(answer.json()) == 4  # the notification is not answered
    assert replies["1"]["result"] == {}
    assert replies['"two"']["result"]["structuredContent"]["rows"] == [[42]]
    assert replies["3"]["error"]["code"] == -32601
    assert replies["null"]["error"]["code"] == -32600
    # the 2025-03-26 header named, or a batch of notifications alone: 202, nothing to answer
    named = {**session, "mcp-protocol-version": "2025-03-26"}
    assert httpx.post(url, json=batch[1:2], headers=named, timeout=30).status_code == 202
    empty = httpx.post(url, json=[], headers=session, timeout=30)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == -32600
    httpx.delete(url, headers=session, timeout=30)
    # a session of 2025-06-18 has no batches
    later = {
        **_session(url, demo_server.analyst_token, "2025-06-18"),
        "mcp-protocol-version": "2025-06-18",
    }
    refused = httpx.post(url, json=batch[:1], headers=later, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["error"] == {"code": -32600, "message": BATCH_MESSAGE}
    httpx.delete(url, headers=later, timeout=30)


@pytest.mark.parametrize("ident", [{"a": 1}, [1], True, None, 1.5, 1.0, 1e3])
@pytest.mark.parametrize("method", ["initialize", "tools/list"])
def test_a_request_with_an_unusable_id_is_answered_over_http(
    demo_server: DemoServer, ident: object, method: str
) -> None:
    """The SDK reads a request whose id MCP does not allow as a notification: 202 and no
    answer, so the client waits for ever (and an initialize opened a session)."""
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "odd-ids", "version": "1"},
    }
    answer = httpx.post(
        f"{demo_server.live.base_url}/mcp/",
        json={"jsonrpc": "2.0", "id": ident, "method": method, "params": params},
        headers={
            "Authorization": f"Bearer {demo_server.analyst_token}",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )
    assert answer.status_code == 400 and "mcp-session-id" not in answer.headers
    assert answer.json()["id"] is None and answer.json()["error"]["code"] == -32600
    assert '"id" must be a string or an integer' in answer.json()["error"]["message"]


async def test_a_request_with_an_unusable_id_is_answered_on_stdio(tmp_path: Path) -> None:
    """Over stdio such a request got no answer at all (the client waited for ever), where
    HTTP answers -32600; it is answered the same now, and the session goes on."""
    async with _local_mcp(tmp_path) as (process, lines):
        for ident in ({"a": 1}, [1], True, None, 1.5, 1.0, 1e3):
            for method in ("initialize", "ping"):
                odd = {**INITIALIZE, "id": ident, "method": method}
                answer = await _exchange(process, lines, json.dumps(odd))
                assert answer["id"] is None and answer["error"]["code"] == -32600, odd
                assert '"id" must be a string or an integer' in answer["error"]["message"]
        started = await _exchange(process, lines, json.dumps(INITIALIZE))
        assert started["id"] == 1 and "serverInfo" in started["result"]
        notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}  # no id: no answer
        await process.stdin.send(json.dumps(notice).encode() + b"\n")
        pong = await _exchange(process, lines, '{"jsonrpc": "2.0", "id": "p", "method": "ping"}')
        assert pong == {"jsonrpc": "2.0", "id": "p", "result": {}}
        await process.stdin.aclose()
        assert await process.wait() == 0


async def test_requests_read_before_stdin_closes_are_answered(tmp_path: Path) -> None:
    """`echo '<requests>' | agnes mcp`: stdin ends right after the last request, while it
    still runs; the SDK answered it "Connection closed" (-32000). Now every request read
    is answered before the server exits."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / ".agnes" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"n": [1, 2, 3]}), data / "t.parquet")
    env = _local_env(tmp_path)
    work = "SELECT sum(hash(range)) AS s FROM range(30000000)"  # a moment of work
    lines = [
        json.dumps(INITIALIZE),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        *(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "tools/call",
                    "params": {"name": "query", "arguments": {"sql": sql}},
                }
            )
            for n, sql in ((2, work), (3, "SELECT count(*) AS n FROM t"))
        ),
    ]
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [sys.executable, "-m", "cli.main", "mcp"],
            input=("\n".join(lines) + "\n").encode(),
            env=env,
            cwd=tmp_path,
            check=False,
        )
    answers = {a["id"]: a for a in map(json.loads, done.stdout.decode().splitlines())}
    assert set(answers) == {1, 2, 3}, answers
    assert all("error" not in answers[n] for n in (2, 3)), answers
    assert not answers[2]["result"].get("isError") and not answers[3]["result"].get("isError")
    assert done.returncode == 0


async def test_a_client_dying_mid_call_stops_its_query(tmp_path: Path) -> None:
    """A client that dies closes both pipes: stdin ends, and nobody reads the answers.
    The server drained what was running (an endless query to its timeout, 120 s),
    holding a core, then failed writing the answer to the broken pipe with a traceback.
    Now it sees the answers' reader gone, cancels what runs, and exits cleanly."""
    empty_workspace(tmp_path)
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": ENDLESS}},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "mcp"],
        env=_local_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1  # the server is up
        process.stdin.write(json.dumps(call).encode() + b"\n")
        process.stdin.flush()
        process.stdin.close()  # the client dies: both of its pipes close
        process.stdout.close()
        assert process.wait(timeout=60) == 0  # well before the query's 120 s
    finally:
        process.kill()
    errors = process.stderr.read().decode() if process.stderr else ""
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors


def test_refused_params_are_named_over_http(demo_server: DemoServer) -> None:
    """The SDK answered every malformed request "Invalid request parameters" with empty
    data: the client could not tell which param to fix."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = {
        **_session(url, demo_server.analyst_token, "2025-06-18"),
        "mcp-protocol-version": "2025-06-18",
    }
    cases = [
        ("tools/call", {"arguments": {}}, "name"),
        ("tools/call", {"name": "query", "arguments": "select 1"}, "arguments"),
        ("resources/read", {}, "uri"),
        ("logging/setLevel", {"level": "loud"}, "level"),
        # every list comes in one page: a cursor was never issued (it was ignored)
        ("tools/list", {"cursor": "garbage"}, "cursor"),
        ("prompts/list", {"cursor": "x"}, "cursor"),
    ]
    for n, (method, params, named) in enumerate(cases):
        request = {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
        error = httpx.post(url, json=request, headers=session, timeout=30).json()["error"]
        assert error["code"] == -32602
        assert error["message"].startswith(f"Invalid params for {method}: {named}"), error
        assert error["data"]["problems"][0]["param"] == named
    listed = {"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"cursor": None}}
    assert httpx.post(url, json=listed, headers=session, timeout=30).json()["result"]["tools"]
    httpx.delete(url, headers=session, timeout=30)


async def test_a_request_before_initialize_is_told_so_on_stdio(tmp_path: Path) -> None:
    async with _local_mcp(tmp_path) as (process, lines):
        early = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        answer = await _exchange(process, lines, early)
        # -32600, as over HTTP (a request without a session): its params are not at fault
        assert answer["id"] == 5 and answer["error"]["code"] == -32600
        assert "not initialized; send initialize" in answer["error"]["message"]
        await process.stdin.aclose()
        assert await process.wait() == 0


@pytest.mark.parametrize("version", ["2025-06-19", "1999", "latest"])
def test_an_unknown_protocol_version_header_is_refused_as_one(
    demo_server: DemoServer, version: str
) -> None:
    """The SDK took a header naming no version for the 2026-07-28 protocol and answered
    a session's request that "params._meta must be an object carrying ... envelope
    keys", nothing about the header to fix."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-06-18")
    request = {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}
    answer = httpx.post(url, json=request, headers={**session, "mcp-protocol-version": version})
    assert answer.status_code == 400
    assert answer.json()["id"] == 4
    error = answer.json()["error"]
    assert f"Unsupported protocol version '{version}'" in error["message"]
    assert "2025-06-18" in error["data"]["supported"] and error["data"]["requested"] == version
    named = {**session, "mcp-protocol-version": "2025-06-18"}
    assert httpx.post(url, json=request, headers=named).json()["result"]["tools"]
    httpx.delete(url, headers=session, timeout=30)


def test_refusals_before_the_sdk_reads_a_request_carry_its_id(demo_server: DemoServer) -> None:
    """An ended session's 404, a 406 and the 500 of a session ended during the call were
    answered with "id": null: the client could not tell which request they answered."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = {
        **_session(url, demo_server.analyst_token, "2025-06-18"),
        "mcp-protocol-version": "2025-06-18",
    }
    ping = {"jsonrpc": "2.0", "id": "p-1", "method": "ping"}
    html_only = httpx.post(url, json=ping, headers={**session, "Accept": "text/html"})
    assert html_only.status_code == 406 and html_only.json()["id"] == "p-1"
    httpx.delete(url, headers=session, timeout=30)
    ended = httpx.post(url, json={**ping, "id": 12}, headers=session, timeout=30)
    assert ended.status_code == 404 and ended.json()["id"] == 12
    assert ended.json()["error"]["message"] == "Session not found"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_typed_json_is_refused_as_json_rpc(
    demo_server: DemoServer, content_type: str | None
) -> None:
    """`curl -d` types its body as a form: the SDK answered 400 with the bare text
    "Invalid Content-Type header" (no JSON-RPC error, no type), which a client's
    JSON-RPC layer cannot read."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-06-18")
    headers = {k: v for k, v in session.items() if k.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    ping = json.dumps({"jsonrpc": "2.0", "id": "c-1", "method": "ping"})
    answer = httpx.post(url, content=ping, headers=headers, timeout=30)  # untyped: none
    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["id"] == "c-1" and answer.json()["error"]["code"] == -32600
    assert "application/json" in answer.json()["error"]["message"]
    typed = httpx.post(
        url, content=ping, headers={**headers, "Content-Type": "application/json; charset=utf-8"}
    )
    assert typed.json()["result"] == {}
    httpx.delete(url, headers=session, timeout=30)


async def test_a_resource_the_server_cannot_be_reached_for_is_no_invalid_params(
    tmp_path: Path,
) -> None:
    """A resource read that failed on the server's side (the Agnes server unreachable,
    503) was answered -32602, invalid params: the client was told its request was wrong.
    It is an internal error (-32603) with the typed refusal in data; a request naming
    what is not there stays -32602."""
    async with _local_mcp(tmp_path) as (process, lines):
        assert "result" in await _exchange(process, lines, json.dumps(INITIALIZE))
        read = {"jsonrpc": "2.0", "id": 2, "method": "resources/read"}
        remote = {**read, "params": {"uri": "agnes://tables/web_sessions/schema"}}
        failed = await _exchange(process, lines, json.dumps(remote))
        assert failed["error"]["code"] == -32603, failed
        assert failed["error"]["data"]["error"]["code"] == "unreachable"
        missing = {**read, "id": 3, "params": {"uri": "agnes://nowhere"}}
        assert (await _exchange(process, lines, json.dumps(missing)))["error"]["code"] == -32602
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0


ANSWERS = [
    {"jsonrpc": "2.0", "id": 7, "result": {}},  # an answer to a request of the server's
    {"jsonrpc": "2.0", "id": 7},  # nor an answer: no result, no error
]


async def test_an_error_about_an_answer_carries_no_id_on_stdio(tmp_path: Path) -> None:
    """An error about what the client sent as an answer (not a request) was given that
    answer's id: the client takes it for the answer to its own request of that id. JSON-RPC
    says an invalid request's id is null when none can be read; an answer has no request."""
    async with _local_mcp(tmp_path) as (process, lines):
        assert "result" in await _exchange(process, lines, json.dumps(INITIALIZE))
        bare = await _exchange(process, lines, json.dumps(ANSWERS[1]))
        assert bare["id"] is None and bare["error"]["code"] == -32600, bare
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_an_error_about_an_answer_carries_no_id_over_http(
    demo_server: DemoServer, answer: dict[str, Any], content_type: str
) -> None:
    headers = {
        "Authorization": f"Bearer {demo_server.analyst_token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": content_type,
    }
    url = f"{demo_server.live.base_url}/mcp/"
    refused = httpx.post(url, content=json.dumps(answer), headers=headers, timeout=30)
    assert refused.status_code >= 400
    assert refused.json()["id"] is None, refused.text


async def test_blank_lines_on_stdio_are_skipped_not_answered(tmp_path: Path) -> None:
    """A blank line holds no message: it was answered -32700, an answer to no request."""
    async with _local_mcp(tmp_path) as (process, lines):
        assert process.stdin is not None
        await process.stdin.send(b"\n  \n\r\n\t\n")
        started = await _exchange(process, lines, json.dumps(INITIALIZE))
        assert started["id"] == 1 and "serverInfo" in started["result"]
        await process.stdin.aclose()
        assert await process.wait() == 0


async def test_a_request_reusing_a_running_requests_id_is_refused_on_stdio(
    tmp_path: Path,
) -> None:
    """Over HTTP a request of a running one's id is refused (-32600); on stdio it was run
    beside it, and its answer went out under that id: the client took a ping's empty
    result for its query's answer. The same rule holds on both transports now, and for a
    request of a batch (a 2025-03-26 session's)."""
    opening = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": "2025-03-26"}}
    async with _local_mcp(tmp_path) as (process, lines):
        assert process.stdin is not None
        await _exchange(process, lines, json.dumps(opening))
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": ENDLESS}},
        }
        await process.stdin.send(f"{json.dumps(initialized)}\n{json.dumps(call)}\n".encode())
        again = await _exchange(
            process, lines, json.dumps({**call, "method": "ping", "params": {}})
        )
        assert again["id"] == 2 and again["error"]["code"] == -32600, again
        assert "still running" in again["error"]["message"]
        other = await _exchange(process, lines, '{"jsonrpc": "2.0", "id": "2", "method": "ping"}')
        assert other == {"jsonrpc": "2.0", "id": "2", "result": {}}  # "2" is another id
        batch = [{"jsonrpc": "2.0", "id": n, "method": "ping"} for n in (2, 5)]
        answers = await _exchange(process, lines, json.dumps(batch))
        assert [(a["id"], a.get("error", {}).get("code")) for a in answers] == [
            (2, -32600),
            (5, None),
        ]
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}
        await process.stdin.send(json.dumps(cancel).encode() + b"\n")
        await process.stdin.aclose()
        assert await process.wait() == 0


def test_bodies_refused_before_the_mcp_app_reads_them_are_json_rpc(
    demo_server: DemoServer,
) -> None:
    """A body over max_request_bytes (10 MiB) was refused in the REST API's shape, whose
    error code no JSON-RPC layer reads; one between the SDK's own 4 MiB bound and that
    limit was refused in plain text. One limit holds now, and its refusal is JSON-RPC."""
    url = f"{demo_server.live.base_url}/mcp/"
    session = _session(url, demo_server.analyst_token, "2025-06-18")
    padded = {"jsonrpc": "2.0", "id": 4, "method": "ping", "params": {"_meta": {"pad": ""}}}
    padded["params"]["_meta"]["pad"] = "a" * (5 << 20)  # type: ignore[index]
    served = httpx.post(url, json=padded, headers=session, timeout=60)
    assert served.status_code == 200 and served.json() == {"jsonrpc": "2.0", "id": 4, "result": {}}
    padded["params"]["_meta"]["pad"] = "a" * (11 << 20)  # type: ignore[index]
    refused = httpx.post(url, json=padded, headers=session, timeout=60)
    assert refused.status_code == 413 and refused.headers["content-type"] == "application/json"
    assert refused.json()["jsonrpc"] == "2.0" and refused.json()["id"] is None
    assert refused.json()["error"]["code"] == -32600
    assert refused.json()["error"]["data"]["code"] == "payload_too_large"
    ping = {"jsonrpc": "2.0", "id": 5, "method": "ping"}
    odd = httpx.post(url, json=ping, headers={**session, "Origin": "https://evil.example"})
    assert odd.status_code == 403 and odd.json()["error"]["data"]["code"] == "origin_not_allowed"
    anonymous = httpx.post(url, json=ping, headers={"Content-Type": "application/json"})
    assert anonymous.status_code == 401  # the gate's refusal keeps the API's shape
    assert anonymous.json()["error"]["code"] == "unauthenticated"
