"""The pull's own HTTP client (``agnes_sync.pull.transport.Wire``): the same answers and
errors as the API client, a kept-alive connection the server dropped is opened again,
a body left unread never poisons the next request, a stalled server times out (in an
answer's head and in its body), and a proxy in the environment leaves the work to httpx
(which speaks to proxies)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from agnes_sync.hashing import new_hasher
from agnes_sync.pull.pull import pull
from agnes_sync.pull.transport import BUFFER, Wire, wire_for
from agnes_sync.server_api import (
    NotAgnesServer,
    ServerApi,
    ServerError,
    ServerTimeout,
    ServerUnreachable,
)
from agnes_sync.workspace.layout import WorkspacePaths

BIG = bytes(range(256)) * (3 * BUFFER // 256 + 7)  # several reads, the last one short


class Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up mid-answer is what some tests do


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[tuple[str, dict[str, str]]] = []
    connections: set[tuple[str, int]] = set()
    release = threading.Event()  # what a stalled answer waits for

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        Handler.requests.append((self.path, dict(self.headers.items())))
        Handler.connections.add(self.client_address)
        path = self.path.split("?")[0].removeprefix("/prefix")
        if path == "/api/big":
            self._send(200, BIG, "application/octet-stream", etag='"abc"')
        elif path == "/api/json":
            self._send(200, json.dumps({"path": self.path}).encode(), "application/json")
        elif path == "/api/manifest":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
            else:
                self._send(200, '{"é": 1}'.encode(), "application/json", etag='W/"v1"')
        elif path == "/api/refused":
            error = {"error": {"code": "table_not_granted", "message": "no", "hint": "ask"}}
            self._send(403, json.dumps(error).encode(), "application/json")
        elif path == "/api/html":
            self._send(404, b"<html>nope</html>", "text/html")
        elif path == "/api/gateway":
            self._send(502, b"bad gateway", "text/plain")
        elif path == "/api/stall-head":  # nothing until the test is over
            Handler.release.wait(60)
        elif path == "/api/stall-body":  # the head and half the body, then nothing
            self.send_response(200)
            self.send_header("Content-Length", str(len(BIG)))
            self.end_headers()
            self.wfile.write(BIG[: len(BIG) // 2])
            self.wfile.flush()
            Handler.release.wait(60)
        elif path == "/api/stall-chunked":  # one chunk of a chunked body, then nothing
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(BIG) // 2, BIG[: len(BIG) // 2]))
            self.wfile.flush()
            Handler.release.wait(60)
        elif path == "/api/then-close":  # keep-alive promised, connection closed anyway
            self._send(200, b"{}", "application/json")
            self.close_connection = True
        else:
            self._send(404, b"{}", "application/json")


@pytest.fixture
def server() -> Iterator[str]:
    Handler.requests, Handler.connections = [], set()
    Handler.release.clear()
    httpd = Quiet(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/prefix"
    finally:
        Handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def _wire(base: str) -> Wire:
    wire = wire_for(base, "agnes_t_x", agent="agnes-test", timeout=30)
    assert wire is not None
    return wire


def _download(wire: Wire, path: str = "/api/big") -> bytes:
    with wire.open(path, {"part": "a b/c"}, {"Range": "bytes=0-"}) as body:
        assert body.status == 200 and body.header("ETag") == '"abc"'
        return b"".join(bytes(chunk) for chunk in body.chunks())


def test_the_same_requests_and_answers_as_the_api_client(server: str) -> None:
    wire = _wire(server)
    try:
        assert _download(wire) == BIG
        assert wire.get("/api/json", definitions="true", skipped=None) == {
            "path": "/prefix/api/json?definitions=true"
        }
        assert wire.get_text_if_changed("/api/manifest", None) == ('{"é": 1}', "v1")
        assert wire.get_text_if_changed("/api/manifest", "v1") == (None, "v1")
    finally:
        wire.close()
    path, headers = Handler.requests[0]
    assert path == "/prefix/api/big?part=a+b%2Fc"
    assert headers["Authorization"] == "Bearer agnes_t_x"
    assert headers["User-Agent"] == "agnes-test" and headers["Range"] == "bytes=0-"
    assert headers["Accept-Encoding"] == "identity"  # the hash covers the file's own bytes
    assert len(Handler.connections) == 1  # one kept-alive connection for all of it


def test_errors_are_the_api_clients(server: str) -> None:
    wire = _wire(server)
    try:
        with pytest.raises(ServerError) as refused:
            _download(wire, "/api/refused")
        assert (refused.value.code, refused.value.hint, refused.value.status) == (
            "table_not_granted",
            "ask",
            403,
        )
        with pytest.raises(NotAgnesServer, match="HTTP 404"):
            wire.get("/api/html")
        with pytest.raises(ServerUnreachable, match="502"):
            wire.get("/api/gateway")
        assert _download(wire) == BIG  # the connection is still good after errors
    finally:
        wire.close()


def test_a_dropped_keep_alive_is_opened_again(server: str) -> None:
    wire = _wire(server)
    try:
        assert wire.get("/api/then-close") == {}
        assert _download(wire) == BIG
    finally:
        wire.close()
    assert len(Handler.connections) == 2


def test_a_body_left_unread_never_reaches_the_next_request(server: str) -> None:
    wire = _wire(server)
    try:
        with wire.open("/api/big", None, {}) as body:
            next(iter(body.chunks()))
        assert _download(wire) == BIG
    finally:
        wire.close()
    assert len(Handler.connections) == 2  # the half-read connection was closed


def test_a_stalled_server_times_out_in_the_head_and_in_the_body(server: str) -> None:
    """A body of known length is read with the kernel keeping the timeout (no poll before
    each read); the connection is back on Python's timeout for the next answer's head,
    even when the body's reader stopped at its last byte without asking for the end.
    A chunked body keeps Python's timeout: either way a stall is a timeout, never a
    short body taken for whole or a crash in http.client's framing."""
    wire = wire_for(server, None, agent="agnes-test", timeout=0.5)  # a stall, not a slow turn
    assert wire is not None
    try:
        with wire.open("/api/big", None, {}) as body:
            chunks = body.chunks()
            got = 0
            while got < len(BIG):  # every byte, and no read past the last one
                got += len(next(chunks))
        with pytest.raises(ServerTimeout, match=r"sent nothing for 0\.5 s") as stalled_head:
            wire.get("/api/stall-head")  # on that connection, on its first try
        assert stalled_head.value.code == "server_timeout"
        assert "agnes pull" in (stalled_head.value.hint or "")
        assert len(Handler.connections) == 1
        for stalled in ("/api/stall-body", "/api/stall-chunked"):
            parts: list[int] = []
            with (
                pytest.raises(ServerTimeout, match=r"sent nothing for 0\.5 s"),
                wire.open(stalled, None, {}) as body,
            ):
                parts.extend(len(chunk) for chunk in body.chunks())
            assert 0 < sum(parts) < len(BIG)  # what came, then the timeout
        assert _download(wire) == BIG  # a new connection, and it works
    finally:
        wire.close()
    assert len(Handler.connections) == 4


def test_nothing_listening_is_unreachable() -> None:
    wire = _wire("http://127.0.0.1:9")
    with pytest.raises(ServerUnreachable, match=r"127\.0\.0\.1:9") as refused:
        wire.get("/api/json")
    assert refused.value.code == "unreachable"  # not a timeout: nothing was ever sent


@pytest.mark.parametrize(
    ("variable", "url", "proxied"),
    [
        ("HTTPS_PROXY", "https://agnes.example.com", True),
        ("http_proxy", "http://agnes.example.com", True),
        ("ALL_PROXY", "http://agnes.example.com", True),
        ("HTTPS_PROXY", "http://agnes.example.com", False),  # not this scheme's
        (None, "https://agnes.example.com", False),
    ],
)
def test_a_proxy_leaves_the_pull_to_httpx(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, url: str, proxied: bool
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    if variable:
        monkeypatch.setenv(variable, "http://proxy.example.com:3128")
    assert (wire_for(url, None, agent="agnes", timeout=5) is None) == proxied


class Files(BaseHTTPRequestHandler):
    """A server with a manifest of ``bodies`` (path -> parquet bytes): the pull's own
    requests, nothing else."""

    protocol_version = "HTTP/1.1"
    bodies: dict[str, bytes] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, value: object, **headers: str) -> None:
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, header in headers.items():
            self.send_header(name, header)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/api/sync/manifest":
            tables = [
                {
                    "id": name.split(".")[0],
                    "parts": [{"path": name, "size": len(b), "hash": _hash(b)}],
                }
                for name, b in sorted(Files.bodies.items())
            ]
            self._json({"api_version": 1, "user": "ana", "tables": tables}, ETag='"m1"')
        elif path.startswith("/api/data/"):
            body = Files.bodies[path.split("/")[3] + ".parquet"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", f'"{_hash(body)}"')
            self.end_headers()
            self.wfile.write(body)
        else:  # the catalog it keeps
            self._json({})


def _hash(body: bytes) -> str:
    hasher = new_hasher()
    hasher.update(body)
    return str(hasher.hexdigest())


@pytest.mark.parametrize("jobs", [1, 3])
def test_a_pull_over_the_wire_places_every_file(tmp_path: Path, jobs: int) -> None:
    """With several jobs, a finisher flushes and renames while the downloads go on; with
    one, each file is in place before the next starts. The same files either way."""
    source = tmp_path / "source"
    source.mkdir()
    for n in range(8):
        duckdb.sql(
            f"COPY (SELECT range AS id, {n} AS n FROM range({1000 * (n + 1)})) "
            f"TO '{source}/t{n}.parquet'"
        )
    Files.bodies = {p.name: p.read_bytes() for p in source.iterdir()}
    httpd = Quiet(("127.0.0.1", 0), Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        wire = _wire(base)
        paths = WorkspacePaths(tmp_path / "ws")
        try:
            done = pull(paths, ServerApi(base, None), jobs=jobs, transport=wire)
        finally:
            wire.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (done.downloaded, done.failed) == (8, [])
    assert {p.name: p.read_bytes() for p in paths.data.glob("*.parquet")} == Files.bodies
    assert not [p for p in paths.data.iterdir() if p.name.startswith(".")]
    con = duckdb.connect(str(paths.db), read_only=True)
    assert con.execute("SELECT sum(n) FROM t7").fetchone() == (7 * 8000,)
    con.close()
