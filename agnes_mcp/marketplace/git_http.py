"""Serving a feed repository over git's smart HTTP by running ``git http-backend`` (CGI).

Only upload-pack (clone and fetch) is ever passed on: the routes refuse receive-pack
before anything else, and the backend runs with ``http.receivepack=false`` and
``http.getanyfile=false`` besides. The backend is an asyncio subprocess: the request
body (a fetch's wants and haves: kilobytes) is read first, at most ``MAX_BODY_BYTES``,
and a gzip body is inflated here to the same bound (git would inflate it without one,
and upload-pack keeps every ``have`` in memory); its CGI header block becomes the
response's status and headers, and its stdout streams back as it comes, under the
transport's backpressure. Pack generation happens in git, never on the event loop; a
client that goes away gets its backend killed, and so does one past its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import signal
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agnes_mcp.api.json_errors import send_error
from agnes_mcp.errors import InternalError, InvalidRequest, PayloadTooLarge
from agnes_mcp.marketplace.git_command import git_binary, git_env
from agnes_sync.errors import AgnesError

logger = logging.getLogger("agnes.marketplace")

SERVICE = "git-upload-pack"
CHUNK = 1 << 16
BACKEND_CONFIG = {"http.receivepack": "false", "http.getanyfile": "false"}
# Git-Protocol header values git sends ("version=2", "version=2:object-format=sha1").
_PROTOCOL = re.compile(r"^[A-Za-z0-9=:._-]{1,200}$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "status"})
_MAX_HEADER_LINES = 100
# A fetch's request: wants, haves and capabilities, a few hundred bytes a round; this
# bound (also on the inflated body) holds ~150,000 haves.
MAX_BODY_BYTES = 8 << 20


def git_error_text(message: str, hint: str | None) -> str:
    """An error as git shows it (each line as ``remote: ...``): the message, the hint."""
    return message + "\n" + (f"hint: {hint}\n" if hint else "")


def backend_env(
    project_root: Path,
    path_info: str,
    *,
    method: str,
    query: str,
    headers: Mapping[str, str],
) -> dict[str, str]:
    """The CGI environment of one ``git http-backend`` run (``headers``: the request's)."""
    cgi = {
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    if "content-type" in headers:
        cgi["CONTENT_TYPE"] = headers["content-type"]
    # CONTENT_LENGTH is the body as the backend gets it (inflated here): set at the run.
    protocol = headers.get("git-protocol", "")
    if _PROTOCOL.match(protocol):
        cgi["HTTP_GIT_PROTOCOL"] = protocol
    return git_env(BACKEND_CONFIG, extra=cgi)


class GitBackendResponse(Response):
    """Runs ``git http-backend`` when sent; ``on_close`` runs once it is over."""

    def __init__(
        self,
        env: dict[str, str],
        on_close: Callable[[], None],
        *,
        encoding: str | None = None,
        seconds: float = 300.0,
        plain_errors: bool = False,
    ) -> None:
        super().__init__()
        self.env = env
        self.on_close = on_close
        self.encoding = (encoding or "identity").strip().lower()
        self.seconds = seconds
        self.plain_errors = plain_errors  # the client is git: it shows text bodies only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            try:
                body = await request_body(receive, self.encoding)
            except (PayloadTooLarge, InvalidRequest) as exc:
                await self._refuse(scope, send, exc)
                return
            if body is None:
                return  # the client left before it sent its request
            try:
                async with asyncio.timeout(self.seconds):
                    await self._run(scope, body, receive, send)
            except TimeoutError:
                logger.warning(
                    "a git request ran past %g s: its git http-backend is stopped", self.seconds
                )
        finally:
            self.on_close()

    async def _run(self, scope: Scope, request: bytes, receive: Receive, send: Send) -> None:
        process = await asyncio.create_subprocess_exec(
            git_binary(),
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, "CONTENT_LENGTH": str(len(request))},
            start_new_session=True,  # its upload-pack and pack-objects go with it
        )
        assert process.stdout is not None and process.stderr is not None
        gone = asyncio.Event()
        body = asyncio.create_task(_feed_body(process, request, receive, gone))
        errors = asyncio.create_task(process.stderr.read())
        try:
            head = await _read_head(process.stdout)
            if head is None:
                await self._failed(scope, send, process, errors)
                return
            status, headers = head
            await send({"type": "http.response.start", "status": status, "headers": headers})
            while chunk := await process.stdout.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            body.cancel()  # the response is over: the client leaving now changes nothing
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            code = await process.wait()
            if code != 0 and not gone.is_set():
                logger.warning(
                    "git http-backend exited with %d: %s", code, (await errors).decode()[-1000:]
                )
        finally:
            body.cancel()
            await _stop(process)
            errors.cancel()

    async def _refuse(self, scope: Scope, send: Send, error: AgnesError) -> None:
        if not self.plain_errors:
            await send_error(scope, send, error)
            return
        body = git_error_text(error.message, error.hint).encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _failed(
        self,
        scope: Scope,
        send: Send,
        process: asyncio.subprocess.Process,
        errors: asyncio.Task[bytes],
    ) -> None:
        code = await _stop(process)  # it said nothing a CGI script must say: stop it
        incident = secrets.token_hex(6)
        logger.error(
            "git http-backend failed (incident %s, exit %d): %s",
            incident,
            code,
            (await errors).decode()[-2000:],
        )
        await self._refuse(
            scope, send, InternalError(f"The git backend failed (incident {incident}).")
        )


async def request_body(receive: Receive, encoding: str) -> bytes | None:
    """The request's body as the backend reads it: at most ``MAX_BODY_BYTES``, a gzip body
    inflated to the same bound; None when the client left first."""
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise InvalidRequest(
            f"A git request's body may be sent as is or gzip-compressed, not '{encoding}'."
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if encoding == "identity":
        return body
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflate.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise InvalidRequest("The git request's gzip body is corrupt.") from None
    if len(inflated) > MAX_BODY_BYTES:
        raise _too_large()
    return inflated


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"A git request may hold at most {MAX_BODY_BYTES >> 20} MiB (inflated).",
        hint="A clone or fetch sends far less; 'git clone' the marketplace afresh.",
    )


async def _feed_body(
    process: asyncio.subprocess.Process, request: bytes, receive: Receive, gone: asyncio.Event
) -> None:
    """Write the request into the backend, then wait for the client to leave: if it
    leaves before the response is over, the backend is killed."""
    assert process.stdin is not None
    try:
        if request:
            process.stdin.write(request)
            await process.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the backend stopped reading; still watch the client
    finally:
        if not process.stdin.is_closing():
            process.stdin.close()
    message = await receive()  # returns when the client goes (or we finish)
    if message["type"] == "http.disconnect" and process.returncode is None:
        gone.set()
        logger.info("a client left during a git request: its git http-backend is stopped")
        _kill(process)


async def _stop(process: asyncio.subprocess.Process) -> int:
    """Kill the backend if it still runs, and reap it. Its stdout is drained meanwhile:
    asyncio's ``wait()`` returns only once every pipe saw its end, and a stdout nobody
    read (a client that stopped reading, a request past its time) is paused full."""
    if process.returncode is None:
        _kill(process)
    assert process.stdout is not None
    stdout = process.stdout

    async def drain() -> None:
        while await stdout.read(CHUNK):
            pass

    _, code = await asyncio.gather(drain(), process.wait())
    return code


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the backend and everything it started (its process group; only while it has
    not been reaped, so the group id cannot be another process's)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def _read_head(stdout: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]] | None:
    """The CGI header block: ``Status:`` (200 if absent) and the other headers."""
    status = 200
    headers: list[tuple[bytes, bytes]] = []
    for _ in range(_MAX_HEADER_LINES):
        line = await stdout.readline()
        if not line:
            return None  # no output: the backend failed
        line = line.rstrip(b"\r\n")
        if not line:
            return status, headers
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        name, value = name.strip().lower(), value.strip()
        if name == b"status":
            try:
                status = int(value.split()[0])
            except (IndexError, ValueError):
                return None
        elif name.decode("latin-1") not in _HOP_BY_HOP:
            headers.append((name, value))
    return None
