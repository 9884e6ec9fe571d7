"""The server's transport joins an answer's small writes into one send when the event loop
turns; large writes, closing and aborting behave as the socket's own transport does. Real
sockets, a real event loop: what the peer can read, and when."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agnes_mcp import http_protocol
from agnes_mcp.http_protocol import SMALL_BYTES, CoalescingTransport
from tests.conftest import LiveServer, running_server


class _Quiet(asyncio.Protocol):
    pass


@asynccontextmanager
async def _pair() -> AsyncIterator[tuple[CoalescingTransport, socket.socket]]:
    """A coalescing transport over one end of a socket pair; the other end, non-blocking."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(_Quiet, ours)
    wrapped = CoalescingTransport(transport, loop)
    try:
        yield wrapped, peer
    finally:
        wrapped.close()
        peer.close()


def _readable(peer: socket.socket) -> bytes:
    try:
        return peer.recv(1 << 20)
    except BlockingIOError:
        return b""


async def _read_exactly(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        data += await loop.sock_recv(peer, size - len(data))
    return data


def test_small_writes_leave_together_when_the_loop_turns() -> None:
    async def scenario() -> None:
        async with _pair() as (transport, peer):
            transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
            transport.write(bytearray(b"{}"))
            transport.write(b"")
            assert _readable(peer) == b""  # held: nothing on the wire before the loop turns
            assert transport.get_write_buffer_size() > 0
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert await _read_exactly(peer, 40) == (
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
            )

    asyncio.run(scenario())


def test_a_large_write_goes_at_once_after_what_was_pending() -> None:
    async def scenario() -> None:
        async with _pair() as (transport, peer):
            transport.write(b"head;")
            body = b"x" * (SMALL_BYTES + 1)
            transport.write(body)  # too large to hold: the head, then the body, now
            first = _readable(peer)
            assert first.startswith(b"head;x")  # on the wire before the loop turned
            rest = await _read_exactly(peer, len(body) + 5 - len(first))
            assert first + rest == b"head;" + body

    asyncio.run(scenario())


def test_close_sends_what_was_pending_and_abort_drops_it() -> None:
    async def scenario() -> None:
        async with _pair() as (transport, peer):
            transport.writelines([b"last ", b"words"])
            transport.close()
            assert transport.is_closing()
            assert await _read_exactly(peer, 10) == b"last words"
        async with _pair() as (transport, peer):
            transport.write(b"never sent")
            transport.abort()
            await asyncio.sleep(0)
            assert _readable(peer) == b""

    asyncio.run(scenario())


def test_after_an_upgrade_nothing_is_held() -> None:
    async def scenario() -> None:
        async with _pair() as (transport, peer):
            transport.write(b"101 head;")
            transport.set_protocol(_Quiet())  # a websocket takes the connection over
            assert _readable(peer) == b"101 head;"  # what was held went first, at once
            transport.write(b"frame")
            assert await _read_exactly(peer, 5) == b"frame"  # and each write goes at once

    asyncio.run(scenario())


def test_a_client_that_half_closes_still_gets_its_answer(live_server: LiveServer) -> None:
    """A request followed at once by the client's end of stream (``shutdown(SHUT_WR)``):
    asyncio closes the connection right after the end of stream, so an answer still held
    for the loop's turn must go out first."""
    host, port = live_server.base_url.removeprefix("http://").split(":")
    for _ in range(20):  # the answer and the end of stream meet in one turn of the loop
        with socket.create_connection((host, int(port)), timeout=30) as client:
            request = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
            client.sendall(request.encode())
            client.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
        assert answer.endswith(b"}"), answer[-200:]


def test_the_server_answers_whole_over_it(live_server: LiveServer) -> None:
    """Small and streamed answers through the real server (uvicorn with this protocol)."""
    with live_server.client(live_server.admin_token) as client:
        for _ in range(3):  # keep-alive: answers follow each other on one connection
            health = client.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
        spec = client.get("/api/openapi.json")  # larger than what is held: sent at once
        assert spec.status_code == 200, spec.text[:200]
        assert len(spec.content) > SMALL_BYTES and spec.json()["paths"]
        assert client.get("/api/whoami").status_code == 200


def _connect(live_server: LiveServer, source: str) -> socket.socket:
    """A raw connection to the live server from ``source`` (an address of 127.0.0.0/8, so
    this test's connections are counted apart from the suite's other clients)."""
    host, port = live_server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30, source_address=(source, 0))


def _until_closed(client: socket.socket) -> bytes:
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    return answer


def test_a_request_head_that_never_ends_is_cut_off(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slowloris: a head begun and never finished holds the connection only so long, on a
    new connection and on a kept-alive one alike."""
    monkeypatch.setattr(http_protocol, "HEAD_SECONDS", 0.3)
    with _connect(live_server, "127.0.0.5") as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
        assert _until_closed(slow) == b""  # closed by the server, no answer
    with _connect(live_server, "127.0.0.5") as kept:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = kept.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 OK"), first[:100]
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the next head stalls
        assert _until_closed(kept) == b""
    with _connect(live_server, "127.0.0.5") as whole:  # a request sent whole is answered
        whole.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert _until_closed(whole).startswith(b"HTTP/1.1 200 OK")


def test_one_address_holds_only_so_many_connections(tmp_path: Path) -> None:
    """``max_connections_per_client`` (the smallest it may be here) bounds one address."""
    with running_server(tmp_path / "data", max_connections_per_client=16) as live_server:
        _one_address_holds_only_so_many(live_server, 16)


def _one_address_holds_only_so_many(live_server: LiveServer, limit: int) -> None:
    held = [_connect(live_server, "127.0.0.6") for _ in range(limit)]
    try:
        with _connect(live_server, "127.0.0.6") as fourth:
            refused = _until_closed(fourth)
        assert refused.startswith(b"HTTP/1.1 503"), refused[:200]
        assert b'"too_many_connections"' in refused and b"retry-after: 5" in refused
        with _connect(live_server, "127.0.0.7") as other:  # another address is not held up
            other.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert _until_closed(other).startswith(b"HTTP/1.1 200 OK")
    finally:
        for client in held:
            client.close()
    answered = b""
    for _ in range(200):  # the server releases the closed ones as it sees them close
        with _connect(live_server, "127.0.0.6") as again:
            again.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answered = _until_closed(again)
        if answered.startswith(b"HTTP/1.1 200 OK"):
            break
    assert answered.startswith(b"HTTP/1.1 200 OK"), answered[:200]


def test_a_body_that_stops_coming_is_cut_off(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body is read before any route checks the sender: most of a large body sent and
    then nothing holds its memory only so long (408, closed), without a token too."""
    from agnes_mcp.api import body_limit

    monkeypatch.setattr(body_limit, "BODY_SECONDS", 0.3)
    with _connect(live_server, "127.0.0.6") as slow:
        slow.sendall(
            b"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n" + b" " * 900_000
        )
        answer = _until_closed(slow)
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in answer
    with _connect(live_server, "127.0.0.6") as whole:  # a body sent whole is served
        whole.sendall(
            b"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        assert _until_closed(whole).startswith(b"HTTP/1.1 401 ")  # reached auth
