"""The warm query server of one workspace: ``python -P -m cli.warm_query.server NAME ROOT``
(started by the client, never by hand).

It answers one request at a time (a second client waits up to ``BUSY_SECONDS``, then runs
in process); it serves only its own user (SO_PEERCRED) and only requests with its own key;
it exits after ``AGNES_WARM_IDLE_SECONDS`` (default 600) without a request, when the
workspace's ``.agnes/`` or its socket disappears, and on SIGTERM, removing its socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from cli.warm_query.eligible import eligible
from cli.warm_query.key import server_key, socket_name
from cli.warm_query.runtime_dir import safe_runtime_dir
from cli.warm_query.wire import WireError, peer_is, receive_json, send, send_json

BUSY_SECONDS = 2.0
REQUEST_SECONDS = 5.0  # to read a request (and the client's go) once connected
SEND_SECONDS = 60.0  # to hand over an answer
CHECK_SECONDS = 1.0  # how often .agnes/ and the socket are looked at
INTERRUPT_EVERY_SECONDS = 0.05  # a gone client's run: its queries are interrupted this often
MAX_CLIENTS = 16
PARENT_SECONDS = 5.0
WARM_MODULES = (
    "cli.commands.analyst",
    "cli.answer_output",
    "cli.failures",
    "rich.console",
    "rich.table",
    "agnes_mcp.mcp_server.workspace_backend",
)
PROTOCOL = 1


def idle_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("AGNES_WARM_IDLE_SECONDS", "600")))
    except ValueError:
        return 600.0


def _warm_imports() -> None:
    """What a query loads, loaded now rather than on the first request."""
    for module in WARM_MODULES:
        importlib.import_module(module)


class Server:
    def __init__(self, runtime: Path, name: str, root: Path, digest: str) -> None:
        self.runtime = runtime
        self.name = name
        self.root = root
        self.digest = digest
        self.path = runtime / f"{name}.sock"
        self.status_path = runtime / f"{name}.json"
        self.idle = idle_seconds()
        self.run_lock = threading.Lock()
        self.state = threading.Lock()
        self.clients = 0
        self.requests = 0
        self.last = time.monotonic()
        self.listener: socket.socket | None = None
        self.inode = 0

    # --- lifetime ---------------------------------------------------------------------------

    def serve(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # a dead server's: we hold the lock
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        listener.listen(MAX_CLIENTS)
        self.listener = listener
        self.inode = self.path.stat().st_ino
        self._write_status()
        try:
            while self._should_live():
                ready, _, _ = select.select([listener], [], [], CHECK_SECONDS)
                if ready:
                    conn, _ = listener.accept()
                    threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        finally:
            self.close()

    def _should_live(self) -> bool:
        if not (self.root / ".agnes").is_dir():
            return False
        try:
            if self.path.stat().st_ino != self.inode:
                return False  # replaced or removed: another server's now
        except OSError:
            return False
        with self.state:
            busy = self.clients > 0
            idle_for = time.monotonic() - self.last
        return busy or idle_for < self.idle

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self.inode:
                self.path.unlink()
        self.status_path.unlink(missing_ok=True)

    def _write_status(self) -> None:
        status = {
            "pid": os.getpid(),
            "root": str(self.root),
            "requests": self.requests,
            "idle_seconds": self.idle,
        }
        temporary = self.status_path.with_suffix(".json.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(status, file)
        temporary.replace(self.status_path)

    # --- one connection ---------------------------------------------------------------------

    def _handle(self, conn: socket.socket) -> None:
        with self.state:
            self.clients += 1
        try:
            with conn:
                if len(threading.enumerate()) > MAX_CLIENTS + 1 or not peer_is(conn):
                    return  # too many waiting, or another user: drop
                conn.settimeout(REQUEST_SECONDS)
                self._serve_one(conn, receive_json(conn))
        except (OSError, WireError):
            pass  # the client went away (Ctrl-C): it runs nothing more
        finally:
            with self.state:
                self.clients -= 1
                self.last = time.monotonic()

    def _serve_one(self, conn: socket.socket, request: dict[str, Any]) -> None:
        if (
            request.get("protocol") != PROTOCOL
            or request.get("key") != self.digest
            or not isinstance(request.get("argv"), list)
            or eligible(request["argv"]) is None  # only the command lines a client sends
        ):
            send_json(conn, {"status": "stale"})
            return
        if not self.run_lock.acquire(timeout=BUSY_SECONDS):
            send_json(conn, {"status": "busy"})
            return
        try:
            send_json(conn, {"status": "running"})
            if receive_json(conn).get("go") is not True:
                return  # the client gave up waiting: it runs the query itself
            with _stopped_if_gone(conn):
                reply = self._run(request)
        finally:
            self.run_lock.release()
        if reply is None:
            send_json(conn, {"status": "failed"})
            return
        code, segments = reply
        conn.settimeout(SEND_SECONDS)  # a client stopped with Ctrl-Z does not pin us
        send_json(
            conn,
            {"status": "done", "code": code, "segments": [[fd, len(b)] for fd, b in segments]},
        )
        send(conn, b"".join(b for _, b in segments))

    def _run(self, request: dict[str, Any]) -> tuple[int, list[tuple[int, bytes]]] | None:
        from cli.warm_query.capture import run_captured

        try:
            reply = run_captured(request, str(self.root))
        except Exception as exc:  # noqa: BLE001 - the client runs it in process and says why
            sys.stderr.write(f"warm query: request failed: {type(exc).__name__}\n")
            return None
        self.requests += 1
        with contextlib.suppress(OSError):  # a full disk must not lose the answer
            self._write_status()
        return reply


@contextlib.contextmanager
def _stopped_if_gone(conn: socket.socket) -> Iterator[None]:
    """While the block runs, a client that goes away (killed, Ctrl-C: its end of the
    socket closes) has the query it asked for interrupted, not left running for nobody.
    The client sends nothing more until the answer, so anything readable is its end."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            readable, _, _ = select.select([conn], [], [], CHECK_SECONDS / 4)
            if not readable or done.is_set():
                continue
            try:
                gone = conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                continue
            except OSError:
                gone = True
            if gone:
                from agnes_mcp.rails.watchdog import WATCHDOG

                # Until the run ends: its query may not have started yet (an interrupt
                # before DuckDB runs it is lost), or the command may run another.
                while not done.is_set():
                    WATCHDOG.interrupt_all()
                    done.wait(INTERRUPT_EVERY_SECONDS)
            return

    watcher = threading.Thread(target=watch, name="agnes-warm-client", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _after_exit(pid: int, seconds: float) -> None:
    """Wait (at most ``seconds``) for the client that started us to exit: our imports
    (~0.5 s of CPU) must not slow down its last steps."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None or pid <= 1:
        return
    try:
        fd = opener(pid)
    except OSError:
        return  # gone already
    try:
        select.select([fd], [], [], seconds)
    finally:
        os.close(fd)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        return 2
    name, root = argv[0], Path(argv[1])
    found = safe_runtime_dir(create=False)
    if found is None:
        return 1
    runtime = Path(found)
    lock = os.open(runtime / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another server of this key is running or starting
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        if not (root / ".agnes").is_dir():
            return 1
        digest = server_key(str(root))
        if socket_name(digest) != name:
            return 1  # the environment is not the client's: never answer for another key
        os.chdir(root)
        _after_exit(os.getppid(), PARENT_SECONDS)
        _warm_imports()
        Server(runtime, name, root, digest).serve()
    finally:
        _tidy(runtime, name, lock)
    return 0


def _tidy(runtime: Path, name: str, lock: int) -> None:
    """Remove our lock file (a server starting meanwhile on it sees the socket replaced
    and exits) and the log unless it says something."""
    path = runtime / f"{name}.lock"
    with contextlib.suppress(OSError):
        if path.stat().st_ino == os.fstat(lock).st_ino:
            path.unlink()
    log = runtime / f"{name}.log"
    with contextlib.suppress(OSError):
        if log.stat().st_size == 0:
            log.unlink()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
