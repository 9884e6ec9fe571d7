"""The thin client: ``agnes query`` sends its command line to the workspace's warm server
and prints the captured output; when no server can answer, ``main`` runs the command in
process and then starts one (detached; it is not waited for).

Imports only the standard library's small modules: this path must stay well under the
~250 ms it takes to import DuckDB, sqlglot, pyarrow and pydantic.
"""

# os.path, not pathlib: pathlib costs ~7 ms of import on the warm path
# ruff: noqa: PTH109, PTH112, PTH118

from __future__ import annotations

import io
import os
import socket
import sys
from collections.abc import Sequence
from typing import TextIO

from cli import exit_codes
from cli.warm_query.eligible import Eligible, eligible
from cli.warm_query.key import server_key, socket_name, workspace_root
from cli.warm_query.runtime_dir import safe_runtime_dir
from cli.warm_query.wire import WireError, peer_is, receive, receive_json, send_json

CONNECT_SECONDS = 1.0
FIRST_REPLY_SECONDS = 5.0  # the server says "running" or "busy" within ~2 s
ANSWER_SECONDS = 900.0  # a query is capped by its own timeout (120 s, twice with a count)
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes
PROTOCOL = 1


class Unavailable(Exception):
    """The warm path cannot answer: run in process."""


def enabled() -> bool:
    """On unless ``AGNES_WARM_QUERY=0``, where the peer's uid can be checked (Linux:
    SO_PEERCRED; elsewhere every query runs in process)."""
    if not hasattr(socket, "SO_PEERCRED") or not hasattr(socket, "AF_UNIX"):
        return False
    return os.environ.get("AGNES_WARM_QUERY", "1").strip().lower() not in ("0", "false", "no")


class WarmQuery:
    """One ``agnes query`` command line the warm server may answer."""

    def __init__(self, request: Eligible, runtime: str, root: str, digest: str) -> None:
        self.request = request
        self.runtime = runtime
        self.root = root
        self.digest = digest
        self.name = socket_name(digest)
        self.stdin_text: str | None = None
        self.start_after = False  # no server answered: start one after the in-process run

    @classmethod
    def for_argv(cls, argv: Sequence[str]) -> WarmQuery | None:
        if not enabled():
            return None
        request = eligible(argv)
        if request is None or not hasattr(sys.stdout, "buffer"):
            return None
        runtime = safe_runtime_dir()
        if runtime is None:
            return None
        try:
            root = workspace_root(request.workspace)
        except OSError:
            return None
        query = cls(request, runtime, root, server_key(root))
        if len(query.socket_path.encode()) > MAX_SOCKET_PATH:
            return None
        return query

    @property
    def socket_path(self) -> str:
        return os.path.join(self.runtime, f"{self.name}.sock")

    def answer(self) -> int | None:
        """The exit code after printing the server's answer, or ``None``: run in process
        (with the SQL read from stdin already put back)."""
        try:
            if self.request.reads_stdin:
                self.stdin_text = sys.stdin.read()
            segments, code = self._exchange()
        except KeyboardInterrupt:  # as cli.failures.report says it
            sys.stderr.write("interrupted\n")
            return exit_codes.INTERRUPTED
        except Unavailable:
            if self.stdin_text is not None:
                sys.stdin = io.StringIO(self.stdin_text)
            return None
        return _print(segments, code)

    def _exchange(self) -> tuple[list[tuple[int, bytes]], int]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_SECONDS)
            try:
                sock.connect(self.socket_path)
            except OSError as exc:
                self.start_after = True
                raise Unavailable from exc
            if not peer_is(sock):
                raise Unavailable
            return self._ask(sock)
        except (OSError, WireError, ValueError, KeyError, TypeError) as exc:
            raise Unavailable from exc
        finally:
            sock.close()

    def _ask(self, sock: socket.socket) -> tuple[list[tuple[int, bytes]], int]:
        out, err = sys.stdout, sys.stderr
        send_json(
            sock,
            {
                "protocol": PROTOCOL,
                "key": self.digest,
                "argv": self.request.argv,
                "cwd": os.getcwd(),
                "stdin": self.stdin_text,
                "stdout": [out.encoding, out.errors],
                "stderr": [err.encoding, err.errors],
                "tty": [out.isatty(), err.isatty()],
                "terminal": terminal_sizes(),
            },
        )
        sock.settimeout(FIRST_REPLY_SECONDS)
        if receive_json(sock).get("status") != "running":
            raise Unavailable  # busy or stale
        # Committed: the server runs the query only after this (a client that gave up
        # waiting and runs it in process never has it run twice).
        send_json(sock, {"go": True})
        sock.settimeout(ANSWER_SECONDS)
        header = receive_json(sock)
        if header.get("status") != "done":
            raise Unavailable
        body = receive(sock)
        segments: list[tuple[int, bytes]] = []
        at = 0
        for fd, size in header["segments"]:
            if fd not in (1, 2) or size < 0 or at + size > len(body):
                raise Unavailable
            segments.append((fd, body[at : at + size]))
            at += size
        return segments, int(header["code"])

    def start_server(self) -> None:
        """Start this workspace's server, detached, unless one holds the lock already."""
        if not self.start_after or not os.path.isdir(os.path.join(self.root, ".agnes")):
            return
        from cli.warm_query.spawn import spawn_server

        spawn_server(self.runtime, self.name, self.root)


def terminal_sizes() -> list[list[int] | None]:
    """``os.get_terminal_size`` of fds 0, 1 and 2 (``None``: not a terminal): the server
    answers the same to rich (tables) and argparse (usage text)."""
    sizes: list[list[int] | None] = []
    for fd in (0, 1, 2):
        try:
            size = os.get_terminal_size(fd)
        except (ValueError, OSError):
            sizes.append(None)
        else:
            sizes.append([size.columns, size.lines])
    return sizes


def _print(segments: list[tuple[int, bytes]], code: int) -> int:
    """Write the answer as the command wrote it; a reader that left (``| head``) ends it
    at that point, quietly, as in process: exit 141 and nothing written after."""
    streams = {1: sys.stdout, 2: sys.stderr}
    try:
        for fd, chunk in segments:
            stream = streams[fd]
            stream.flush()
            _write_all(stream, chunk)
        sys.stdout.flush()
    except BrokenPipeError:
        from cli.main import reader_gone

        return reader_gone()
    return code


def _write_all(stream: TextIO, data: bytes) -> None:
    """All of ``data`` to ``stream``'s file descriptor, a write at a time: a pipe whose
    reader left mid-way takes part of one large write and then raises ``BrokenPipeError``
    (one buffered write of it all could end short without a word)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        stream.buffer.write(data)
        stream.buffer.flush()
        return
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[: 1 << 20]) :]
