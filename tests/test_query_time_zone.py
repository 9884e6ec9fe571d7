"""Every query answers in UTC, whatever the time zone of the machine it runs on.

DuckDB takes its ``TimeZone`` from the machine: a workspace query on a laptop in New York
cast a TIMESTAMPTZ to the day before the server's answer, truncated it to another day and
formatted another hour. The sandbox every query runs in (server, workspace, notebook,
warehouse) now sets UTC, so the laptop, the server and the MCP tools agree."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_harness import workspace  # noqa: F401  (the fixture)
from tests.conftest import DemoServer

AGNES = str(Path(sys.executable).parent / "agnes")
AT = "TIMESTAMPTZ '2024-01-01 03:00:00+00'"
SQL = (
    f"SELECT {AT} AS at, {AT}::DATE AS day, date_trunc('day', {AT}) AS midnight, "
    f"strftime({AT}, '%H') AS hour, TIMESTAMPTZ '2024-06-01 12:00:00' AS no_zone_given "
    "FROM products LIMIT 1"
)
IN_UTC = {
    "at": "2024-01-01 03:00:00+00",
    "day": "2024-01-01",
    "midnight": "2024-01-01 00:00:00+00",
    "hour": "03",
    "no_zone_given": "2024-06-01 12:00:00+00",
}


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_a_workspace_query_answers_as_the_server_does_in_any_time_zone(
    demo_server: DemoServer,
    workspace: Path,  # noqa: F811
    zone: str,
) -> None:
    env = {**os.environ, "TZ": zone, "AGNES_WARM_QUERY": "0"}
    done = subprocess.run(
        [AGNES, "query", "--format", "csv", SQL],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "duckdb (workspace)" in done.stderr  # it ran on the laptop, not the server
    local = list(csv.DictReader(io.StringIO(done.stdout)))
    assert local == [IN_UTC]
    with demo_server.client() as analyst:
        answer = analyst.post("/api/query", json={"sql": SQL})
    assert answer.status_code == 200, answer.text
    server = answer.json()["rows"][0]
    assert [server[1], server[3]] == [local[0]["day"], local[0]["hour"]]


SYNC_CONNECTIONS = """
import sys
from pathlib import Path
from agnes_sync.attach_host import Host
from agnes_sync.connector import SourceContext
from connectors.files.connector import FilesConnector
import duckdb
from connectors.duckdb_warehouse.connector import DuckDBWarehouseConnector
root = Path(sys.argv[1])
connector = FilesConnector(SourceContext("files", {"path": str(root)}, root))
duckdb.connect(str(root / "w.duckdb")).close()
warehouse = DuckDBWarehouseConnector(SourceContext("w", {"path": str(root / "w.duckdb")}, root))
for con in (Host().cursor(), connector.duckdb_cursor(), warehouse._connect()):
    print(con.execute("SELECT current_setting('TimeZone')").fetchone()[0])
"""


def test_every_connection_a_sync_makes_reads_times_in_utc(tmp_path: Path) -> None:
    """A connector's DuckDB (an admin's row filter, the profile), a DuckDB warehouse's
    (a materialized query) and the host extracts are attached to, on a machine in Tokyo."""
    done = subprocess.run(
        [sys.executable, "-c", SYNC_CONNECTIONS, str(tmp_path)],
        env={**os.environ, "TZ": "Asia/Tokyo"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["UTC", "UTC", "UTC"]
