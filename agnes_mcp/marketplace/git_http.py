"""Serving a feed repository over git's smart HTTP by running ``git http-backend`` (CGI).

Only upload-pack (clone and fetch) is ever passed on: the routes refuse receive-pack
before anything else, and the backend runs with ``http.receivepack=false`` and
``http.getanyfile=false`` besides. The backend is an asyncio subprocess: the request
body streams into its stdin, its CGI header block becomes the response's status and
headers, and its stdout streams back as it comes, under the transport's backpressure.
Pack generation happens in git, never on the event loop; a client that goes away gets
its backend killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agnes_mcp.api.json_errors import send_error
from agnes_mcp.errors import InternalError
from agnes_mcp.marketplace.git_command import git_binary, git_env

logger = logging.getLogger("agnes.marketplace")

SERVICE = "git-upload-pack"
CHUNK = 1 << 16
BACKEND_CONFIG = {"http.receivepack": "false", "http.getanyfile": "false"}
# Git-Protocol header values git sends ("version=2", "version=2:object-format=sha1").
_PROTOCOL = re.compile(r"^[A-Za-z0-9=:._-]{1,200}$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "status"})
_MAX_HEADER_LINES = 100


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
    for header, variable in (
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
    ):
        if header in headers:
            cgi[variable] = headers[header]
    protocol = headers.get("git-protocol", "")
    if _PROTOCOL.match(protocol):
        cgi["HTTP_GIT_PROTOCOL"] = protocol
    return git_env(BACKEND_CONFIG, extra=cgi)


class GitBackendResponse(Response):
    """Runs ``git http-backend`` when sent; ``on_close`` runs once it is over."""

    def __init__(self, env: dict[str, str], on_close: Callable[[], None]) -> None:
        super().__init__()
        self.env = env
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._run(receive, send)
        finally:
            self.on_close()

    async def _run(self, receive: Receive, send: Send) -> None:
        process = await asyncio.create_subprocess_exec(
            git_binary(),
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            start_new_session=True,  # its upload-pack and pack-objects go with it
        )
        assert process.stdout is not None and process.stderr is not None
        gone = asyncio.Event()
        body = asyncio.create_task(_feed_body(process, receive, gone))
        errors = asyncio.create_task(process.stderr.read())
        try:
            head = await _read_head(process.stdout)
            if head is None:
                await self._failed(send, process, errors)
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
            if process.returncode is None:
                _kill(process)
                await process.wait()
            errors.cancel()

    async def _failed(
        self, send: Send, process: asyncio.subprocess.Process, errors: asyncio.Task[bytes]
    ) -> None:
        if process.returncode is None:
            _kill(process)  # it said nothing a CGI script must say: stop it
        code = await process.wait()
        incident = secrets.token_hex(6)
        logger.error(
            "git http-backend failed (incident %s, exit %d): %s",
            incident,
            code,
            (await errors).decode()[-2000:],
        )
        await send_error(send, InternalError(f"The git backend failed (incident {incident})."))


async def _feed_body(
    process: asyncio.subprocess.Process, receive: Receive, gone: asyncio.Event
) -> None:
    """Stream the request body into the backend, then wait for the client to leave: if it
    leaves before the response is over, the backend is killed."""
    assert process.stdin is not None
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            if chunk:
                process.stdin.write(chunk)
                await process.stdin.drain()
            if not message.get("more_body", False):
                message = await receive()  # returns when the client goes (or we finish)
                break
    except (BrokenPipeError, ConnectionResetError):
        message = await receive()  # the backend stopped reading; still watch the client
    finally:
        if not process.stdin.is_closing():
            process.stdin.close()
    if message["type"] == "http.disconnect" and process.returncode is None:
        gone.set()
        logger.info("a client left during a git request: its git http-backend is stopped")
        _kill(process)


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
