"""The server's memory ceiling: a query that grows values past every per-query count
(``s || s`` folded by ``list_reduce``) fails with ``memory_limit_exceeded`` at the
ceiling, and the process keeps working, instead of growing until the kernel kills it.

The ceiling is exercised in a child process (it is process-wide): there, with the data
segment capped ~1.5 GiB above what the process holds, the query that took a server to
19.8 GB is refused, the peak stays under the cap, and the next query answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agnes_mcp import memory_ceiling
from agnes_mcp.settings import AgnesSettings

GiB = 1024**3
REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, re, sys
from pathlib import Path
import duckdb
from agnes_mcp import memory_ceiling
from agnes_mcp.rails.refusals import QueryRefused
from agnes_mcp.rails.sandbox import Limits, Sandbox
from tests.conftest import local_table

def status(field):
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M)[1]) * 1024

data = Path(sys.argv[1]) / "t.parquet"
duckdb.sql(f"COPY (SELECT range AS id FROM range(10)) TO '{data}'")
box = Sandbox([local_table("t", data)], memory_limit="2GB", threads=2)
limits = Limits(rows=100, bytes=1 << 20, timeout_seconds=60)
box.run("SELECT count(*) FROM t", limits)  # threads and caches up before the cap is set
ceiling = memory_ceiling.apply(f"{status('VmData') + (3 << 29)}B")
doubling = (
    "SELECT max(length(list_reduce(list_transform(range(34), lambda x: 'x' || r.range), "
    "lambda a, b: a || a))) AS n FROM range(3) r"
)
try:
    box.run(doubling, limits)
    outcome = "answered"
except QueryRefused as refused:
    outcome = refused.code
after = box.run("SELECT count(*) AS n FROM t", limits).table.to_pylist()
print(json.dumps({"ceiling": ceiling, "outcome": outcome, "after": after,
                  "peak_data": status("VmPeak"), "hwm": status("VmHWM")}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc is needed")
def test_a_query_past_the_ceiling_fails_and_the_process_goes_on(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "memory_limit_exceeded"
    assert report["after"] == [{"n": 10}]  # the same sandbox answers the next query
    assert report["hwm"] < report["ceiling"]  # resident memory never passed the ceiling


def test_the_ceiling_setting() -> None:
    assert memory_ceiling.ceiling_bytes("off") is None
    assert memory_ceiling.ceiling_bytes("12GiB") == 12 * GiB
    assert memory_ceiling.ceiling_bytes("1.5 GB") == 1_500_000_000
    # auto: 80% of the machine, never below the floor (reserved address space counts)
    assert memory_ceiling.ceiling_bytes("auto", machine=24 * GiB) == int(24 * GiB * 0.8)
    assert memory_ceiling.ceiling_bytes("auto", machine=4 * GiB) == memory_ceiling.FLOOR_BYTES
    with pytest.raises(ValueError, match="Not a memory size"):
        memory_ceiling.ceiling_bytes("lots")
    assert AgnesSettings().max_server_memory == "auto"
    with pytest.raises(ValueError):
        AgnesSettings(max_server_memory="lots")


def test_the_machine_is_the_smaller_of_its_memory_and_its_cgroup(tmp_path: Path) -> None:
    physical = memory_ceiling.machine_memory(cgroup_limits=())
    limited, unlimited = tmp_path / "memory.max", tmp_path / "v1"
    limited.write_text(f"{2 * GiB}\n")
    unlimited.write_text("max\n")
    assert memory_ceiling.machine_memory((unlimited,)) == physical
    assert memory_ceiling.machine_memory((unlimited, limited)) == min(physical, 2 * GiB)
    assert memory_ceiling.machine_memory((tmp_path / "absent",)) == physical


def test_the_server_sets_its_ceiling(tmp_path: Path) -> None:
    """``agnes serve`` caps its own data segment as ``max_server_memory`` says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env |= {
        "PYTHONPATH": str(REPO),
        "AGNES_MAX_SERVER_MEMORY": "9GiB",
        "AGNES_CONFIG_HOME": str(tmp_path / "config"),
    }
    argv = ["serve", "--port", "0", "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the server says it serves once it has started
            if "Press Ctrl-C" in line:
                break
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        row = next(x for x in limits.splitlines() if x.startswith("Max data size"))
        assert row.split()[3] == str(9 * GiB), row
    finally:
        process.terminate()
        process.wait(timeout=30)
