"""A query whose caller gives up stops at once: an MCP client's ``notifications/cancelled``
(or a call cancelled any other way) interrupts the query its call runs, instead of
leaving it to run to the timeout with a core and one of the caller's query places."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from agnes_mcp.query.concurrency import in_query_lane
from agnes_mcp.rails.refusals import QueryCancelled, QueryTimeout
from agnes_mcp.rails.sandbox import Limits, run_select
from agnes_mcp.rails.watchdog import Watchdog
from agnes_sync.caller import CALLER, CallCancelled, Caller
from agnes_sync.server_api import ServerApi
from tests.conftest import running_demo
from tests.mcp_raw import INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.anyio
SIGNAL_WAIT = 120.0  # how long a test waits for what must happen (never hit when it works)
ENDLESS = "SELECT sum(hash(range)) AS s FROM range(1000000000000)"  # hours of work
LONG = Limits(rows=10, bytes=1 << 20, timeout_seconds=3600)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_a_caller_interrupts_its_running_queries_and_any_it_starts_later() -> None:
    dog, caller = Watchdog(), Caller()
    first, other, later = threading.Event(), threading.Event(), threading.Event()
    token = CALLER.set(caller)
    try:
        mine = dog.watch(3600, first.set)
    finally:
        CALLER.reset(token)
    theirs = dog.watch(3600, other.set)  # another call's query
    assert caller.cancel() == 1 and first.wait(SIGNAL_WAIT)
    first.clear()
    assert first.wait(SIGNAL_WAIT)  # sent again until released: DuckDB may have dropped it
    assert dog.release(mine) is False  # fired: its cursor must not be reused
    token = CALLER.set(caller)
    try:
        dog.watch(3600, later.set)
    finally:
        CALLER.reset(token)
    assert later.wait(SIGNAL_WAIT)  # started after the caller gave up: stopped at once
    assert dog.release(theirs) is True and not other.is_set()


def _to_the_process() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _to_this_thread() -> None:
    # The kernel delivers a signal sent to the process to any of its threads (one of
    # DuckDB's, under load): Python runs the handler only once the main thread is back in
    # Python, and the main thread, waiting for the query with no timeout, never was (a CI
    # run hung to pytest's timeout). The wait now wakes to run it.
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C as an interactive `agnes query` gets it: KeyboardInterrupt. A test run started
    in the background by a shell without job control inherits SIGINT ignored, and Python
    keeps an inherited ignore: the signal never arrived and the test hung to its timeout."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_raises")
@pytest.mark.parametrize("ctrl_c", [_to_the_process, _to_this_thread], ids=["process", "thread"])
def test_ctrl_c_stops_a_query_run_on_the_main_thread_at_once(ctrl_c: Callable[[], None]) -> None:
    """`agnes query` in process and a notebook run the query on Python's main thread, where
    DuckDB seldom looked at signals: Ctrl-C waited for the query's end or its timeout (here
    an hour: without the fix the test runs into pytest's timeout)."""
    assert threading.current_thread() is threading.main_thread()
    con = duckdb.connect()
    running = threading.Event()
    con.create_function("running", lambda n: (running.set(), n)[1], ["BIGINT"], "BIGINT")
    # once, at the start (an uncorrelated subquery), never again in the hours of work
    sql = "SELECT sum(hash(range + (SELECT running(0)))) AS s FROM range(1000000000000)"

    def send() -> None:
        running.wait()
        ctrl_c()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_select(con, sql, LONG)
    finally:
        sender.join()
    assert running.is_set()
    # the connection is usable again: the query ended before run_select gave it back
    assert run_select(con, "SELECT 42 AS n", LONG).table.column(0)[0].as_py() == 42
    con.close()


def test_a_query_of_a_caller_that_already_gave_up_does_not_run() -> None:
    """An MCP cancel read before its call cancels the call's Caller as the call starts,
    but DuckDB clears an interrupt as a query begins: a short query ran and answered (only
    a long one was stopped, by the watchdog's repeated interrupts). It is refused
    query_cancelled without running; the connection stays usable."""
    con = duckdb.connect()
    ran: list[int] = []
    con.create_function("ran", lambda n: (ran.append(n), n)[1], ["BIGINT"], "BIGINT")
    caller = Caller()
    caller.cancel()
    marker = CALLER.set(caller)
    try:
        with pytest.raises(QueryCancelled):
            run_select(con, "SELECT ran(42) AS n", LONG)
    finally:
        CALLER.reset(marker)
    assert ran == []  # nothing of it ran
    assert run_select(con, "SELECT ran(7) AS n", LONG).table.column(0)[0].as_py() == 7
    con.close()


async def test_cancelling_the_call_stops_its_query_in_the_lane() -> None:
    con = duckdb.connect()
    started, finished = threading.Event(), threading.Event()
    outcome: list[QueryCancelled] = []

    def work() -> None:
        started.set()
        try:
            run_select(con, ENDLESS, LONG)
        except QueryCancelled as exc:
            outcome.append(exc)
        finally:
            finished.set()

    task = asyncio.create_task(in_query_lane(work))
    assert await asyncio.to_thread(started.wait, SIGNAL_WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(finished.wait, SIGNAL_WAIT), "the query ran on"
    assert outcome and outcome[0].code == "query_cancelled", "stopped, but not as cancelled"
    # The same interrupt from the timeout still says query_timeout.
    with pytest.raises(QueryTimeout):
        await in_query_lane(run_select, con, ENDLESS, Limits(1, 1 << 20, timeout_seconds=0.2))
    con.close()


def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + SIGNAL_WAIT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_an_mcp_cancel_notification_stops_the_query_on_the_server(tmp_path: Path) -> None:
    with running_demo(tmp_path, query_timeout_seconds=3600) as demo:
        slots = demo.live.services.query.slots
        url = f"{demo.live.base_url}/mcp/"
        with httpx.Client(timeout=SIGNAL_WAIT) as http:
            session = _mcp_session(http, url, demo.analyst_token)
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "query", "arguments": {"sql": ENDLESS}},
            }

            def send_call() -> None:  # answered nothing (cancelled) or cut off at the end
                with contextlib.suppress(httpx.HTTPError):
                    httpx.post(url, json=call, headers=session, timeout=SIGNAL_WAIT)

            waiting = threading.Thread(target=send_call, daemon=True)
            waiting.start()
            _until(lambda: slots.running() == 1, "the query never started")
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": 2, "reason": "the user pressed Escape"},
            }
            assert http.post(url, json=cancel, headers=session).status_code == 202
            _until(lambda: slots.running() == 0, "the cancelled query ran on")
            http.delete(url, headers=session)


def test_a_session_ended_during_a_call_answers_it_as_ended(tmp_path: Path) -> None:
    """A client that ends its session (DELETE) while a call runs had the call answered
    500 (-32603): a server fault for what the client did. It is answered as a request
    of an ended session (404, its id, the SDK's -32600), and its query stops."""
    with running_demo(tmp_path, query_timeout_seconds=3600) as demo:
        slots = demo.live.services.query.slots
        url = f"{demo.live.base_url}/mcp/"
        with httpx.Client(timeout=SIGNAL_WAIT) as http:
            session = _mcp_session(http, url, demo.analyst_token)
            _, answers, waiting = _endless_call(http, url, session, 5, slots)
            assert http.delete(url, headers=session).status_code == 200
            waiting.join(SIGNAL_WAIT)
            assert answers, "the call was never answered"
            ended = answers[0]
            assert ended.status_code == 404, ended.text
            assert ended.json()["id"] == 5 and ended.json()["error"]["code"] == -32600
            assert "Session not found" in ended.json()["error"]["message"]
            _until(lambda: slots.running() == 0, "the query of an ended session ran on")


def test_a_request_reusing_a_running_requests_id_is_refused(tmp_path: Path) -> None:
    """The SDK keeps one answer stream per request id: a second POST of the id of a call
    still running took its stream, and the call was never answered (its client waited
    to its timeout). The second is refused at once, and the first is answered."""
    with running_demo(tmp_path, query_timeout_seconds=3600) as demo:
        slots = demo.live.services.query.slots
        url = f"{demo.live.base_url}/mcp/"
        with httpx.Client(timeout=SIGNAL_WAIT) as http:
            session = _mcp_session(http, url, demo.analyst_token)
            call, answers, waiting = _endless_call(http, url, session, 6, slots)
            again = http.post(url, json={**call, "method": "ping", "params": {}}, headers=session)
            assert again.status_code == 400, again.text
            assert again.json()["id"] == 6 and again.json()["error"]["code"] == -32600
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": 6, "reason": "done"},
            }
            http.post(url, json=cancel, headers=session)
            waiting.join(SIGNAL_WAIT)
            assert answers and answers[0].json()["id"] == 6, "the first call was never answered"
            http.delete(url, headers=session)


def _endless_call(
    http: httpx.Client, url: str, session: dict[str, str], ident: int, slots: Any
) -> tuple[dict[str, Any], list[httpx.Response], threading.Thread]:
    """A ``tools/call`` of ENDLESS with id ``ident``, POSTed on a thread of its own and
    running once this returns: the call, the list its answer lands in, and the thread."""
    call = {
        "jsonrpc": "2.0",
        "id": ident,
        "method": "tools/call",
        "params": {"name": "query", "arguments": {"sql": ENDLESS}},
    }
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(http.post(url, json=call, headers=session)), daemon=True
    )
    waiting.start()
    _until(lambda: slots.running() == 1, "the query never started")
    return call, answers, waiting


def _post_then_hang_up(
    base_url: str, headers: dict[str, str], call: dict[str, Any]
) -> socket.socket:
    """The socket a raw POST of ``call`` to /mcp went out on: closing it (at the end of
    its ``with`` block) is the client hanging up."""
    body = json.dumps(call).encode()
    host, port = base_url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /mcp/ HTTP/1.1\r\nHost: {host}:{port}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    client = socket.create_connection((host, int(port)))
    client.sendall(request)
    return client


def test_a_client_hanging_up_during_a_call_stops_its_query(tmp_path: Path) -> None:
    """/mcp answers a POST with plain JSON and keeps nothing to resume from: once the
    client has gone the answer reaches nobody, yet its query ran on to the timeout
    (holding a query place). A client that hangs up has its call cancelled, in a session
    or in a request of protocol 2026-07-28, served without one."""
    with running_demo(tmp_path, query_timeout_seconds=3600) as demo:
        slots = demo.live.services.query.slots
        url = f"{demo.live.base_url}/mcp/"
        with httpx.Client(timeout=SIGNAL_WAIT) as http:
            session = _mcp_session(http, url, demo.analyst_token)
            query = {"name": "query", "arguments": {"sql": ENDLESS}}
            call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": query}
            with _post_then_hang_up(demo.live.base_url, session, call):
                _until(lambda: slots.running() == 1, "the query never started")
            # the client has hung up: its query stops, and the session goes on
            _until(lambda: slots.running() == 0, "the query of a client that hung up ran on")
            again = {**call, "id": 4, "params": {"name": "query", "arguments": {"sql": "SELECT 1"}}}
            answer = _json_rpc_answer(http.post(url, json=again, headers=session))
            assert answer["result"]["isError"] is False
            http.delete(url, headers=session)
            modern = {
                **MCP_HEADERS,
                "Authorization": f"Bearer {demo.analyst_token}",
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": "tools/call",
                "mcp-name": "query",
            }
            meta = {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            sessionless = {**call, "params": {**query, "_meta": meta}}
            with _post_then_hang_up(demo.live.base_url, modern, sessionless):
                _until(lambda: slots.running() == 1, "the sessionless query never started")
            _until(lambda: slots.running() == 0, "the sessionless query ran on")


def test_a_cancel_read_before_its_call_still_stops_it(tmp_path: Path) -> None:
    """Over HTTP a call and its cancel are two POSTs served side by side: a cancel read
    first was dropped (the SDK cancels only what it has in flight) and the call ran on to
    the query timeout. Here the call starts cancelled and answers query_cancelled."""
    with running_demo(tmp_path, query_timeout_seconds=60) as demo:
        url = f"{demo.live.base_url}/mcp/"
        with httpx.Client(timeout=SIGNAL_WAIT) as http:
            session = _mcp_session(http, url, demo.analyst_token)
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": "early-7", "reason": "pressed Escape at once"},
            }
            assert http.post(url, json=cancel, headers=session).status_code == 202
            call = {
                "jsonrpc": "2.0",
                "id": "early-7",
                "method": "tools/call",
                "params": {"name": "query", "arguments": {"sql": ENDLESS}},
            }
            answer = _json_rpc_answer(http.post(url, json=call, headers=session))
            assert answer["result"]["isError"] is True
            assert answer["result"]["structuredContent"]["error"]["code"] == "query_cancelled"
            # a short query (an integer id this time) is cancelled too, not run and answered
            quick = {"name": "query", "arguments": {"sql": "SELECT 4242 AS early"}}
            cancel["params"]["requestId"] = 9
            assert http.post(url, json=cancel, headers=session).status_code == 202
            answer = _json_rpc_answer(
                http.post(url, json={**call, "id": 9, "params": quick}, headers=session)
            )
            assert answer["result"]["structuredContent"]["error"]["code"] == "query_cancelled"
            # a cancel in another session, of the same id, cancels nothing here
            other_session = _mcp_session(http, url, demo.analyst_token)
            cancel["params"]["requestId"] = 10
            assert http.post(url, json=cancel, headers=other_session).status_code == 202
            answer = _json_rpc_answer(
                http.post(url, json={**call, "id": 10, "params": quick}, headers=session)
            )
            assert answer["result"]["isError"] is False
            http.delete(url, headers=other_session)
            # the session goes on: the next call (another id) runs
            again = {**call, "id": 8, "params": {"name": "query", "arguments": {"sql": "SELECT 1"}}}
            assert (
                _json_rpc_answer(http.post(url, json=again, headers=session))["result"]["isError"]
                is False
            )
            assert demo.live.services.query.slots.running() == 0
            http.delete(url, headers=session)


def _mcp_session(http: httpx.Client, url: str, token: str) -> dict[str, str]:
    """An initialised MCP session at ``url``: the headers its requests carry."""
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    started = http.post(url, json=INITIALIZE, headers=auth)
    session = {**auth, "mcp-session-id": started.headers["mcp-session-id"]}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert http.post(url, json=initialized, headers=session).status_code == 202
    return session


def _json_rpc_answer(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer a POST to /mcp carried (a JSON body, or an SSE event's data)."""
    assert response.status_code == 200, response.text[:300]
    if response.headers["content-type"].startswith("application/json"):
        answer: dict[str, Any] = response.json()
        return answer
    data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
    found: dict[str, Any] = json.loads(data[-1])
    return found


async def test_cancelling_the_call_hangs_up_the_request_it_relays_to_the_server() -> None:
    """A workspace relays query_remote, snapshots and server tables' queries to the server
    over HTTP; a cancelled call shuts that connection, so the server sees its client hang
    up and stops the query (it ran on to the server's timeout)."""
    arrived, hung_up = threading.Event(), threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:  # reads the request, never answers, notes the hang-up
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                arrived.set()
                while conn.recv(65536):
                    pass
                hung_up.set()

        threading.Thread(target=serve, daemon=True).start()
        api = ServerApi(f"http://127.0.0.1:{listener.getsockname()[1]}", "t", timeout=3600)
        outcome: list[BaseException] = []

        def relay() -> None:
            try:
                api.post_arrow("/api/query", {"sql": ENDLESS, "mode": "remote"})
            except BaseException as exc:  # noqa: BLE001 - what the relay ended with
                outcome.append(exc)

        task = asyncio.create_task(in_query_lane(relay))
        assert await asyncio.to_thread(arrived.wait, SIGNAL_WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(hung_up.wait, SIGNAL_WAIT), "the request was kept open"
        await asyncio.to_thread(_until, lambda: outcome, "the relay never ended")
        assert isinstance(outcome[0], CallCancelled), outcome
        assert outcome[0].code == "query_cancelled"
        # the next call's request goes through as before
        assert CALLER.get() is None
        api.close()


def test_one_sessions_cancels_do_not_push_out_anothers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancels read before their calls were kept a minute, at most 10,000 server-wide, the
    oldest going first: one client sending cancels for ids it never calls pushed every
    other session's out, and their calls ran on to their timeouts. A session keeps at most
    its own MAX_KEPT_PER_SESSION, its own oldest going first."""
    from agnes_mcp.mcp_server import early_cancels

    cancels = early_cancels.CancelsBeforeCalls()
    session = {"now": "b"}
    monkeypatch.setattr(early_cancels, "mcp_session", lambda: session["now"])
    cancels._cancelled({"requestId": 7})  # session b's, waiting for its call
    session["now"] = "flood"
    for request_id in range(early_cancels.MAX_KEPT + 1):
        cancels._cancelled({"requestId": request_id})
    assert ("b", "7") in cancels._early
    kept = [key for key in cancels._early if key[0] == "flood"]
    assert len(kept) == early_cancels.MAX_KEPT_PER_SESSION  # its newest
    assert kept[-1] == ("flood", str(early_cancels.MAX_KEPT))
