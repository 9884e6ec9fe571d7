"""The rails' parse-only DuckDB connections outlive the threads that use them.

A notebook's query (and ``agnes query``'s) runs on a thread of its own, so that Ctrl-C
stops it. A parse connection kept per thread was made for every such query (~10 ms) and
destroyed as the thread ended; after a script's last query that could be while Python
shut down, and the process aborted ("FATAL: exception not rethrown", exit code 134).
"""

from __future__ import annotations

import subprocess
import sys
import threading

import duckdb
import pytest

from agnes_mcp.rails import duckdb_check

LAST_QUERY_THEN_EXIT = """
from agnes_sync.caller import interruptible
from agnes_mcp.rails.duckdb_check import read_references
interruptible(lambda: read_references("SELECT 1"))
"""


def test_a_script_whose_last_query_ran_on_its_own_thread_exits_cleanly() -> None:
    for _ in range(3):  # it aborted every time here; three runs leave no doubt
        done = subprocess.run(
            [sys.executable, "-c", LAST_QUERY_THEN_EXIT],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "exception not rethrown" not in done.stderr


def test_threads_one_after_another_share_one_parse_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    duckdb_check.read_references("SELECT 1")  # one exists now
    made: list[object] = []
    real_connect = duckdb.connect

    def counted(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        made.append(args)
        return real_connect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(duckdb, "connect", counted)
    for _ in range(3):
        worker = threading.Thread(target=duckdb_check.read_references, args=("SELECT 1",))
        worker.start()
        worker.join()
    assert duckdb_check.statement_kinds("SELECT 1; SELECT 2") == ["SELECT", "SELECT"]
    assert made == []
