"""The warm query server (cli/warm_query/): real `agnes` processes, real Unix sockets.

Its answers are the in-process answers byte for byte; the second call is served by the
server (its status file counts requests); new data is seen; a changed key starts a new
server; an unsafe runtime folder is never used; idle, SIGTERM and a removed `.agnes/`
end it and remove its socket; `AGNES_WARM_QUERY=0` never starts one.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli.warm_query import servers
from cli.warm_query.eligible import eligible
from cli.warm_query.key import server_key, socket_name
from cli.warm_query.runtime_dir import is_private
from cli.warm_query.wire import peer_is, receive_json, send_json

AGNES = str(Path(sys.executable).parent / "agnes")
BOUND = 30.0  # seconds: generous bound on every wait for a condition
# SIGINT back to its default, then exec the command: a suite started in the background by a
# shell without job control has SIGINT ignored, and Python keeps an inherited ignore (as
# `agnes query` must: `cmd &` in a script is not for Ctrl-C to stop). Not a preexec_fn: in a
# forked child of this many-threaded process, running Python before the exec can crash.
CTRL_C_AS_AT_A_TERMINAL = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _write_table(workspace: Path, name: str, values: list[int]) -> None:
    data = workspace / ".agnes" / "data"
    data.mkdir(parents=True, exist_ok=True)
    temporary = data / f".{name}.parquet"
    pq.write_table(pa.table({"n": values, "label": [f"row {v}" for v in values]}), temporary)
    os.replace(temporary, data / f"{name}.parquet")


class Warm:
    """A workspace and a private runtime folder; `agnes` runs with the warm path on."""

    def __init__(self, root: Path, runtime: Path) -> None:
        self.workspace = root / "ws"
        self.workspace.mkdir()
        _write_table(self.workspace, "t", [1, 2, 3])
        self.runtime_base = runtime
        self.runtime = runtime / "agnes"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
        self.env.update(
            XDG_RUNTIME_DIR=str(runtime),
            AGNES_CONFIG_HOME=str(root / "config"),
            AGNES_SERVER_URL="http://127.0.0.1:9",  # never reached: the queries are local
            AGNES_WARM_QUERY="1",
            AGNES_WARM_IDLE_SECONDS="120",
        )
        self.env.pop("COLUMNS", None)
        self.cwd = self.workspace  # where `agnes` runs

    def agnes(
        self, *argv: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [AGNES, *argv],
            cwd=self.cwd,
            env={**self.env, **env},
            input=(stdin or "").encode(),
            capture_output=True,
            timeout=120,
        )

    def servers(self) -> list[dict[str, Any]]:
        return servers.running(self.runtime) if self.runtime.is_dir() else []

    def key(self, **env: str) -> str:
        """The server key an `agnes` run with ``env`` computes (it changes when someone
        edits Agnes's code during the test: that is a new server, by design)."""
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update({**self.env, **env})
            return server_key(str(self.workspace.resolve()))
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def requests(self, name: str) -> int | None:
        return next((int(s["requests"]) for s in self.servers() if s["name"] == name), None)

    def hot(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
        """``agnes <argv>``, checked to be answered by the warm server."""
        for _ in range(3):
            name = socket_name(self.key())
            if self.requests(name) is None:
                self.start()
            before = self.requests(name)
            answer = self.agnes(*argv, stdin=stdin)
            if before is not None and self.requests(name) == before + 1:
                return answer
            assert socket_name(self.key()) != name, f"{argv} was not served warm"
        raise AssertionError("Agnes's code kept changing during the test")

    def start(self, **env: str) -> dict[str, Any]:
        """Run one query in process (which starts the server); the server's status."""
        before = {s["name"] for s in self.servers()}
        assert self.agnes("query", "SELECT 1", "--format", "csv", **env).returncode == 0
        _wait_for(lambda: {s["name"] for s in self.servers()} - before != set(), "a server")
        return next(s for s in self.servers() if s["name"] not in before)


@pytest.fixture
def warm(tmp_path: Path) -> Iterator[Warm]:
    # A short runtime path (a socket's path holds at most 108 bytes).
    runtime = Path(tempfile.mkdtemp(prefix="wq-", dir="/tmp"))
    try:
        yield Warm(tmp_path, runtime)
    finally:
        if (runtime / "agnes").is_dir():
            servers.stop(runtime / "agnes")
        shutil.rmtree(runtime, ignore_errors=True)


def _steady(text: bytes) -> bytes:
    """Output with the measured durations blanked (they differ from run to run)."""
    text = re.sub(rb"\d+(\.\d+)? ms\b", b"<t> ms", text)
    return re.sub(rb'"duration_ms": [0-9.e-]+', b'"duration_ms": <t>', text)


CASES: list[tuple[list[str], str | None]] = [
    (["query", "SELECT n, label FROM t ORDER BY n", "--format", "csv"], None),
    (["query", "SELECT n, label FROM t ORDER BY n", "--json"], None),
    (["query", "SELECT n, label FROM t ORDER BY n"], None),  # table (stdout is a pipe)
    (["query", "SELECT * FROM t", "--limit", "2", "--format", "csv"], None),  # cut: exit 6
    (["query", "SELECT n FROM t WHERE n > 99", "--format", "csv"], None),  # empty answer
    (["query", "SELECT n FROM t WHERE n > 99"], None),  # an empty table: (none)
    (["query", "DROP TABLE t"], None),  # refused: not a SELECT
    (["query", "SELECT * FROM missing", "--json"], None),  # refused: no such table
    (["query", "-", "--format", "csv"], "SELECT 'from stdin' AS said, 'é' AS accent"),
    (["query", "SELECT 1", "--limit", "many"], None),  # argparse's usage error, exit 2
]


def test_warm_answers_equal_in_process_answers(warm: Warm) -> None:
    warm.start()
    codes = set()
    for argv, stdin in CASES:
        cold = warm.agnes(*argv, stdin=stdin, AGNES_WARM_QUERY="0")
        hot = warm.hot(*argv, stdin=stdin)
        codes.add(hot.returncode)
        assert (hot.returncode, _steady(hot.stdout), _steady(hot.stderr)) == (
            cold.returncode,
            _steady(cold.stdout),
            _steady(cold.stderr),
        ), argv
    assert codes == {0, 1, 2, 6}
    # from a subfolder: the same workspace, the same server
    warm.cwd = warm.workspace / "sub"
    warm.cwd.mkdir()
    for argv in (CASES[0][0], [*CASES[0][0], "--workspace", ".."]):
        cold = warm.agnes(*argv, AGNES_WARM_QUERY="0")
        hot = warm.hot(*argv)
        assert (hot.returncode, hot.stdout, _steady(hot.stderr)) == (
            cold.returncode,
            cold.stdout,
            _steady(cold.stderr),
        ), argv


def _on_a_terminal(warm: Warm, argv: list[str], **env: str) -> tuple[int, bytes, bytes]:
    """``agnes <argv>`` with stdout on a 61x17 pseudo-terminal: exit code, what the
    terminal received, stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 17, 61, 0, 0))
    try:
        process = subprocess.Popen(
            [AGNES, *argv],
            cwd=warm.workspace,
            env={**warm.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        received = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            received += chunk
        _, err = process.communicate(timeout=BOUND)
    finally:
        os.close(master)
    return process.returncode, bytes(received), err


def _hot_on_a_terminal(warm: Warm, argv: list[str]) -> tuple[int, bytes, bytes]:
    """:func:`_on_a_terminal`, checked to be answered by the warm server (retried only
    if Agnes's code changed meanwhile, as :meth:`Warm.hot`)."""
    for _ in range(3):
        name = socket_name(warm.key())
        before = warm.requests(name)
        if before is None:
            warm.start()
            continue
        answer = _on_a_terminal(warm, argv)
        if warm.requests(name) == before + 1:
            return answer
        assert socket_name(warm.key()) != name, f"{argv} was not served warm"
    raise AssertionError("Agnes's code kept changing during the test")


def test_a_table_on_a_terminal_is_the_same(warm: Warm) -> None:
    """On a terminal the table follows its width and colours, and argparse's usage text
    its width: the server renders them for the client's terminal (61 columns here)."""
    warm.env["TERM"] = "xterm-256color"  # (part of the key: set before the server starts)
    warm.start()
    table = ["query", "SELECT n, repeat(label, 15) AS long_label FROM t ORDER BY n"]
    usage = ["query", "SELECT 1", "--limit", "many"]
    for argv in (table, usage):
        hot = _hot_on_a_terminal(warm, argv)
        cold = _on_a_terminal(warm, argv, AGNES_WARM_QUERY="0")
        assert (hot[0], hot[1], _steady(hot[2])) == (cold[0], cold[1], _steady(cold[2]))
    hot = _hot_on_a_terminal(warm, table)
    assert b"\x1b[" in hot[1]  # colours
    plain = re.sub(r"\x1b\[[0-9;]*m", "", hot[1].decode())
    assert max(len(line) for line in plain.splitlines()) == 61  # folded to the terminal
    code, _, err = _hot_on_a_terminal(warm, usage)
    assert code == 2 and err != warm.hot(*usage).stderr  # wrapped at 61, not 80, columns


def test_new_data_is_seen_by_the_running_server(warm: Warm) -> None:
    warm.start()
    sql = "SELECT count(*) AS rows FROM t"
    assert warm.hot("query", sql, "--format", "csv").stdout.split() == [b"rows", b"3"]
    _write_table(warm.workspace, "t", [1, 2, 3, 4, 5])  # a pull replaced the file
    _write_table(warm.workspace, "u", [7])  # and brought a new table
    assert warm.hot("query", sql, "--format", "csv").stdout.split() == [b"rows", b"5"]
    new = warm.hot("query", "SELECT n FROM u", "--format", "csv")
    assert new.stdout.split() == [b"n", b"7"]
    (warm.workspace / ".agnes" / "data" / "u.parquet").unlink()  # and a table went away
    gone = warm.hot("query", "SELECT n FROM u", "--format", "csv")
    assert gone.returncode == 1 and b"no table 'u'" in gone.stderr


def test_a_changed_environment_is_another_server(warm: Warm) -> None:
    first = warm.start()
    second = warm.start(AGNES_TOKEN="agnes_pat_secret_value")
    assert first["name"] != second["name"] and first["pid"] != second["pid"]
    # the token is in neither a file's name or content nor the server's command line
    for path in warm.runtime.iterdir():
        assert "secret" not in path.name
        assert not path.is_file() or b"secret" not in path.read_bytes()
    assert b"secret" not in Path(f"/proc/{second['pid']}/cmdline").read_bytes()
    assert {first["pid"], second["pid"]} <= {s["pid"] for s in warm.servers()}
    assert warm.hot("query", "SELECT 2", "--format", "csv").returncode == 0


def test_opt_out_never_starts_a_server(warm: Warm) -> None:
    answer = warm.agnes("query", "SELECT 1", "--format", "csv", AGNES_WARM_QUERY="0")
    assert answer.returncode == 0 and (warm.workspace / ".agnes").is_dir()
    assert not warm.runtime.exists()  # not even its folder


def test_other_commands_never_start_a_server(warm: Warm) -> None:
    assert warm.agnes("disk-info", "--json").returncode == 0
    assert warm.agnes("query", "--help").returncode == 0
    assert not list(warm.runtime.glob("*.sock")) if warm.runtime.exists() else True


def test_an_unsafe_runtime_folder_is_not_used(warm: Warm) -> None:
    warm.runtime.mkdir(mode=0o700)
    warm.runtime.chmod(0o755)  # open to others
    answer = warm.agnes("query", "SELECT 1 AS one", "--format", "csv")
    assert answer.returncode == 0 and answer.stdout.split() == [b"one", b"1"]
    assert list(warm.runtime.iterdir()) == []  # no socket, lock or server
    assert not is_private(warm.runtime)
    warm.runtime.chmod(0o700)
    assert is_private(warm.runtime)
    link = warm.runtime_base / "link"
    link.symlink_to(warm.runtime)
    assert not is_private(link)  # a symlink, even to a private folder
    if os.getuid() == 0:  # only root can give a folder away
        os.chown(warm.runtime, 65534, -1)
        assert not is_private(warm.runtime)
        answer = warm.agnes("query", "SELECT 1 AS one", "--format", "csv")
        assert answer.returncode == 0 and list(warm.runtime.iterdir()) == []


def test_peer_check() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        assert peer_is(ours) and peer_is(theirs)
        assert not peer_is(ours, uid=os.getuid() + 1)


def test_idle_exit_removes_the_socket(warm: Warm) -> None:
    status = warm.start(AGNES_WARM_IDLE_SECONDS="1")
    sock = warm.runtime / f"{status['name']}.sock"
    assert sock.exists()
    _wait_for(lambda: not servers.is_server(status["pid"]), "the idle server to exit")
    assert not sock.exists() and not (warm.runtime / f"{status['name']}.json").exists()


def test_sigterm_and_a_removed_workspace_end_the_server(warm: Warm) -> None:
    status = warm.start()
    sock = warm.runtime / f"{status['name']}.sock"
    os.kill(status["pid"], signal.SIGTERM)
    _wait_for(lambda: not servers.is_server(status["pid"]), "the server to stop")
    assert not sock.exists()
    answer = warm.agnes("query", "SELECT 3 AS three", "--format", "csv")  # in process again
    assert answer.stdout.split() == [b"three", b"3"]
    _wait_for(lambda: bool(warm.servers()), "a new server")
    status = warm.servers()[0]
    shutil.rmtree(warm.workspace / ".agnes")
    _wait_for(lambda: not servers.is_server(status["pid"]), "the server to notice")
    assert not (warm.runtime / f"{status['name']}.sock").exists()


def _request(warm: Warm, key: str, sql: str) -> dict[str, Any]:
    """What a client sends the server for ``agnes query SQL --format csv``, off a terminal."""
    return {
        "protocol": 1,
        "key": key,
        "argv": ["query", sql, "--format", "csv"],
        "cwd": str(warm.workspace),
        "stdin": None,
        "stdout": ["utf-8", "strict"],
        "stderr": ["utf-8", "backslashreplace"],
        "tty": [False, False],
        "terminal": [None, None, None],
    }


def test_clients_that_go_away_or_find_it_busy(warm: Warm) -> None:
    status = warm.start()
    path = str(warm.runtime / f"{status['name']}.sock")
    digest = warm.key()
    assert socket_name(digest) == status["name"]  # the test's key is the server's
    request = _request(warm, digest, "SELECT n FROM t")
    before = int(status["requests"])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        send_json(client, request)
        assert receive_json(client) == {"status": "running"}
    # gone before saying go (it gave up waiting): the query is not run (counted below)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        send_json(client, request)
        assert receive_json(client) == {"status": "running"}
        send_json(client, {"go": True})
    # gone before the answer (Ctrl-C): the query runs, its answer goes nowhere
    _wait_for(lambda: (warm.requests(status["name"]) or 0) > before, "the query")
    # a wrong key, or a command line no client sends, is told it is stale
    for wrong in ({"key": "0" * 64}, {"argv": ["admin", "user", "list"]}):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            send_json(client, {**request, **wrong})
            assert receive_json(client) == {"status": "stale"}
    answer = warm.agnes("query", "SELECT 5 AS five", "--format", "csv")
    assert answer.stdout.split() == [b"five", b"5"]
    assert servers.is_server(status["pid"]) and warm.requests(status["name"]) == before + 2
    # busy (a client holds it): the next call waits briefly, then answers in process
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as holder:
        holder.connect(path)
        send_json(holder, request)
        assert receive_json(holder) == {"status": "running"}
        answer = warm.agnes("query", "SELECT n FROM t ORDER BY n", "--format", "csv")
        assert answer.returncode == 0 and answer.stdout.split() == [b"n", b"1", b"2", b"3"]
        assert warm.requests(status["name"]) == before + 2  # not by the server


def test_a_client_that_goes_away_stops_its_query(warm: Warm) -> None:
    """A client killed while its query ran left the server computing for nobody (minutes
    of CPU, and every later call busy): its closed socket now interrupts the query."""
    status = warm.start()
    path = str(warm.runtime / f"{status['name']}.sock")
    before = int(status["requests"])
    slow = "SELECT sum(hash(range)) AS s FROM range(100000000000)"  # minutes of work
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        send_json(client, _request(warm, warm.key(), slow))
        assert receive_json(client) == {"status": "running"}
        send_json(client, {"go": True})
    # the run ends (the status counts it) long before the query could have
    _wait_for(lambda: (warm.requests(status["name"]) or 0) > before, "the query to stop")
    answer = warm.agnes("query", "SELECT 5 AS five", "--format", "csv")
    assert answer.stdout.split() == [b"five", b"5"]
    assert warm.requests(status["name"]) == before + 2  # served warm: not busy any more


@pytest.mark.parametrize("warm_path", ["0", "1"])
def test_a_workspace_query_stops_at_the_timeout_its_variable_sets(
    warm: Warm, warm_path: str
) -> None:
    """The workspace's timeout was fixed at 120 s whatever AGNES_QUERY_TIMEOUT_SECONDS
    said (the variable the docs give); in process and on the warm server alike."""
    slow = "SELECT sum(hash(range)) AS s FROM range(100000000000)"  # minutes of work
    env = {"AGNES_QUERY_TIMEOUT_SECONDS": "1", "AGNES_WARM_QUERY": warm_path}
    if warm_path == "1":
        warm.start(**env)
    answer = warm.agnes("query", slow, "--json", **env)
    assert answer.returncode != 0
    assert b"query_timeout" in answer.stdout and b"longer than 1 s" in answer.stdout
    bad = warm.agnes("query", "SELECT 1", AGNES_QUERY_TIMEOUT_SECONDS="soon", AGNES_WARM_QUERY="0")
    assert bad.returncode != 0 and b"AGNES_QUERY_TIMEOUT_SECONDS" in bad.stderr + bad.stdout


def test_ctrl_c_while_waiting_exits_130(warm: Warm) -> None:
    """The test plays the server: once the client has committed and waits for the
    answer, SIGINT ends it as Ctrl-C ends an in-process query."""
    warm.runtime.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(warm.runtime / f"{socket_name(warm.key())}.sock"))
        listener.listen(1)
        listener.settimeout(0.05)
        client = subprocess.Popen(
            [*CTRL_C_AS_AT_A_TERMINAL, AGNES, "query", "SELECT 1", "--format", "csv"],
            cwd=warm.workspace,
            env=warm.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            conn = _accept(listener, client)
            with conn:
                assert receive_json(conn)["argv"] == ["query", "SELECT 1", "--format", "csv"]
                send_json(conn, {"status": "running"})
                assert receive_json(conn) == {"go": True}
                client.send_signal(signal.SIGINT)
                out, err = client.communicate(timeout=BOUND)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    assert (client.returncode, out, err) == (130, b"", b"interrupted\n")


def _accept(listener: socket.socket, client: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            return listener.accept()[0]
        except TimeoutError:
            if client.poll() is not None:
                out, err = client.communicate()
                raise AssertionError(
                    f"the client ran in process instead of connecting: exit {client.returncode}, "
                    f"{out!r} {err!r}"
                ) from None
    raise AssertionError("the client never connected")


def test_eligible_command_lines() -> None:
    local = eligible(["query", "SELECT 1", "--format=csv", "--limit", "5", "--workspace", "w"])
    assert local is not None and local.form == "csv" and local.workspace == "w"
    assert eligible(["query", "SELECT 1", "--format", "csv", "--json"]).form == "json"  # type: ignore[union-attr]
    assert eligible(["query", "-"]).reads_stdin  # type: ignore[union-attr]
    for argv in (
        ["query", "SELECT 1", "--remote"],
        ["query", "SELECT 1", "--token", "secret"],
        ["query", "SELECT 1", "--server-url", "http://x"],
        ["query", "SELECT 1", "--form", "csv"],  # argparse would expand it: not here
        ["query", "--help"],
        ["query", "--", "SELECT 1"],
        ["query", "SELECT 1", "SELECT 2"],
        ["query"],
        ["query", "SELECT 1", "--limit"],
        ["catalog"],
    ):
        assert eligible(argv) is None, argv


def test_a_reader_that_stops_early_ends_it_quietly_as_in_process(warm: Warm) -> None:
    """``agnes query ... | head -1`` answered warm: exit 141 and nothing on stderr, as the
    in-process run (docs/cli.md: the exit codes are the same byte for byte)."""
    _write_table(warm.workspace, "big", list(range(100_000)))
    warm.start()
    name = socket_name(warm.key())
    before = warm.requests(name)
    assert before is not None
    command = " ".join(
        f"'{part}'"
        for part in [AGNES, "query", "SELECT n FROM big", "--limit", "100000", "--format", "csv"]
    )
    script = f'{command} 2>agnes.err | head -1; echo "${{PIPESTATUS[0]}}" > agnes.code'
    shown = subprocess.run(
        ["bash", "-c", script],
        cwd=warm.cwd,
        env=warm.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.stdout == "n\n"
    assert warm.requests(name) == before + 1  # the warm server answered it
    said = ((warm.cwd / "agnes.err").read_text(), int((warm.cwd / "agnes.code").read_text()))
    assert said == ("", 141)
