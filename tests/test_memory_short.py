"""A process short of memory is not a query past its limit: DuckDB's allocation refused
by the system ("bad allocation", below ``query_memory_limit``) is ``server_out_of_memory``
(503, try again), not ``memory_limit_exceeded`` (400, change the query).

The shortage is real: a child process caps its own address space (``RLIMIT_AS``) just above
what it holds, on the query's thread, then runs a query that needs a few MB more."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

CHILD = textwrap.dedent(
    """
    import json, re, resource, sys, threading
    from pathlib import Path
    from agnes_mcp.rails.refusals import QueryRefused
    from agnes_mcp.rails.sandbox import Limits, Sandbox
    from tests.conftest import local_table

    limits = Limits(rows=10, bytes=10**7, timeout_seconds=30)
    box = Sandbox([local_table("t", Path(sys.argv[1]))], memory_limit="1GB", threads=2)
    box.run("SELECT 1", limits)  # the watchdog's thread is started
    said = {}

    def short() -> None:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        held = re.search(r"VmSize:\\s+(\\d+)", Path("/proc/self/status").read_text())
        resource.setrlimit(resource.RLIMIT_AS, (int(held[1]) * 1024, hard))
        try:
            box.run("SELECT s, count(*) FROM t GROUP BY 1", limits)
            said.update(code="answered")
        except QueryRefused as refusal:
            said.update(code=refusal.code, status=refusal.status, message=refusal.message,
                        details=refusal.details)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))

    thread = threading.Thread(target=short)
    thread.start()
    thread.join()
    print(json.dumps(said, default=str))
    """
)


def test_an_allocation_the_system_refuses_is_not_the_query_limit(tmp_path: Path) -> None:
    data = tmp_path / "t.parquet"
    duckdb.sql(
        f"COPY (SELECT range AS id, 'w' || (range % 500) AS s FROM range(200000)) TO '{data}'"
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["code"] == "server_out_of_memory", said
    assert said["status"] == 503
    assert "short of memory" in said["message"] and "did not pass" in said["message"]
    assert "limit_name" not in said["details"]
    assert said["details"]["retry_after_seconds"] > 0
