"""Interrupting a cell (the kernel's stop button) during a long query, in a real kernel.

The cell ends at once with ``KeyboardInterrupt`` (not an error from DuckDB's internals),
the query stops where it ran: in a workspace the local sandbox, outside one the server,
whose ``/api/query`` interrupts a query whose client hung up instead of running it to the
timeout for nobody, holding the user's query slot. The next cell queries as usual.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from agnes_mcp.resource_types import ResourceType
from tests.conftest import SIGNAL_WAIT, DemoServer
from tests.test_notebooks import CELL_TIMEOUT, Place, as_user, kernel  # noqa: F401 - fixtures

# Runs for minutes at any scale (a billion steps), so only an interrupt or the timeout ends
# it; it reads a table, so outside a workspace (nothing pulled) the server runs it.
LONG = (
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 1000000000) "
    "SELECT count(*) AS n FROM t, (SELECT 1 FROM products LIMIT 1)"
)
SLOW_METRIC = f"""metrics:
  - name: slow_count
    display_name: Slow count
    category: test
    description: as slow as LONG
    type: count
    sql: "{LONG.replace("AS n", "AS slow_count")}"
    tables: [products]
"""
CELLS = [
    "from agnes_mcp.notebook import connect\nws = connect()",
    f'ws.query("{LONG}")',
    'ws.query("SELECT count(*) AS n FROM orders").row_count',
    'ws.metric("test/slow_count")',  # outside a workspace: POST /api/metrics/.../query
]
INTERRUPT_AFTER = 2.0  # seconds into a local query (nothing outside the kernel sees it run)
STOPPED_WITHIN = 10.0  # the query timeout is 30 s on the server, 120 s in a workspace


class Interrupter(threading.Thread):
    """The stop button, pressed once the cell runs: its first line has written ``marker``
    (an ipykernel ignores SIGINT until it runs a cell: a fixed 2 s from sending the cell
    found it idle on a busy machine, and the query ran to its timeout), and its query is
    on the server (``slots``), or has run ``INTERRUPT_AFTER`` in the kernel."""

    def __init__(self, kernel_pid: int, marker: Path, slots: Any, on_server: bool) -> None:
        super().__init__(daemon=True)
        self.kernel_pid = kernel_pid
        self.marker = marker
        self.slots = slots
        self.on_server = on_server
        self.sent_at: float | None = None
        self.cancelled = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + SIGNAL_WAIT
        while not self.marker.exists() or (self.on_server and not self.slots.running()):
            if self.cancelled.wait(0.02) or time.monotonic() > deadline:
                return
        if not self.on_server and self.cancelled.wait(INTERRUPT_AFTER):
            return
        self.sent_at = time.monotonic()
        os.kill(self.kernel_pid, signal.SIGINT)


def test_an_interrupted_cell_stops_its_query(
    kernel: str,  # noqa: F811
    as_user: Place,  # noqa: F811
    demo_server: DemoServer,
    tmp_path: Path,
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel,
        allow_errors=True,
        resources={"metadata": {"path": str(as_user.folder)}},
    )
    slots = demo_server.live.services.query.slots
    with client.setup_kernel():
        client.execute_cell(notebook.cells[0], 0)
        # what the stop button does to an ipykernel (interrupt_mode "signal")
        kernel_pid = client.km.provisioner.process.pid  # type: ignore[union-attr]
        slow = [1, 3] if as_user.engine == "duckdb (server)" else [1]  # metric: server-side
        for index in slow:
            marker = tmp_path / f"cell-{index}-runs"
            cell = notebook.cells[index]
            cell.source = f"open({str(marker)!r}, 'w').close()\n{CELLS[index]}"
            on_server = index == 3 or as_user.engine == "duckdb (server)"
            interrupter = Interrupter(kernel_pid, marker, slots, on_server)
            interrupter.start()
            client.execute_cell(cell, index)
            ended = time.monotonic()
            interrupter.cancelled.set()
            interrupter.join()
            outputs = cell.outputs
            errors = [o for o in outputs if o["output_type"] == "error"]
            assert [e["ename"] for e in errors] == ["KeyboardInterrupt"], outputs
            assert interrupter.sent_at is not None, "the cell ended before it was interrupted"
            assert ended - interrupter.sent_at < STOPPED_WITHIN, ended - interrupter.sent_at
            deadline = time.monotonic() + STOPPED_WITHIN
            while slots.running() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert slots.running() == 0, f"the server still runs the query of {CELLS[index]}"
            client.execute_cell(notebook.cells[2], 2)
            assert notebook.cells[2].outputs[0]["data"]["text/plain"] == "1"


@pytest.fixture(autouse=True)
def _quiet_demo(demo_server: DemoServer) -> None:
    """No other query of this module's demo is running when a test starts; the slow metric
    is defined and granted to the analyst's group."""
    assert demo_server.live.services.query.slots.running() == 0
    with demo_server.client("admin") as admin:
        done = admin.post("/api/admin/metrics/import", json={"files": {"slow.yml": SLOW_METRIC}})
        assert done.status_code == 200, done.text
    services = demo_server.live.services
    group = services.groups.by_name("Analysts")
    assert group is not None
    if "test/slow_count" not in {g.resource_id for g in services.grants.all(group_id=group.id)}:
        services.grants.add(group.id, ResourceType.METRIC, "test/slow_count", granted_by="test")


# Presses the stop button at 0-29 ms into each of 60 workspace queries (its first one also
# opens the sandbox): wherever the press lands, the call ends in KeyboardInterrupt, and the
# next query answers. DuckDB working on the kernel's thread raised it as ``RuntimeError:
# Query interrupted``, mid-way through opening the sandbox.
STOP_AT_ANY_POINT = """
import os, signal, sys, threading
from agnes_mcp.notebook import connect
LONG = sys.argv[1]
ws = connect()
outcomes = []
for i in range(60):
    press = threading.Timer((i % 30) / 1000, os.kill, (os.getpid(), signal.SIGINT))
    try:
        press.start()
        ws.query(LONG)
        outcomes.append("answered")
    except BaseException as exc:
        outcomes.append(type(exc).__name__ + (": " + str(exc) if str(exc) else ""))
    try:
        press.join()
    except KeyboardInterrupt:
        outcomes.append("late")
    if ws.query("SELECT count(*) AS n FROM orders").row_count != 1:
        outcomes.append("next query wrong")
    if i % 10 == 9:  # and again from a fresh sandbox
        ws.close()
        ws = connect()
print(sorted(set(outcomes)))
"""


@pytest.mark.parametrize("as_user", ["workspace"], indirect=True)
def test_the_stop_button_at_any_point_of_a_query_is_keyboard_interrupt(
    as_user: Place,  # noqa: F811
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", STOP_AT_ANY_POINT, LONG],
        cwd=as_user.folder,
        capture_output=True,
        text=True,
        timeout=CELL_TIMEOUT * 4,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "['KeyboardInterrupt']", done.stdout[-3000:]
