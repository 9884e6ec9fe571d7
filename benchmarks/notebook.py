"""Notebooks: what importing the API costs, whether a 1M-row answer reaches pandas as fast
as DuckDB's own ``.df()``, and how long the getting-started example takes to run.

- import: ``import agnes_mcp.notebook`` (lazy: nothing heavy loads) and ``from
  agnes_mcp.notebook import connect`` (the first cell's real cost) in fresh processes,
  against ``import duckdb`` and against the libraries any query needs, same run.
- df: ``ws.query("SELECT * FROM orders").df()`` on 1M orders, in a workspace pulled from
  ``agnes demo --scale 1``, against DuckDB's own ``.df()`` of the same SELECT on the same
  parquet file with the same thread count. A workspace answers at most 100,000 rows by
  default (its row cap, said in the answer's ``cut``); the timed workspace raises its cap
  to hold all 1M rows, and the run checks that nothing was cut.
- notebook: ``notebooks/01_getting_started.ipynb`` executed by nbclient against the same
  server (outside a workspace, as a user with ``AGNES_SERVER_URL`` and ``AGNES_TOKEN``
  runs it), against a one-cell notebook in the same kernel set-up (start, run, shut down).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.harness import REPO, Result, Server, agnes_server, compile_bytecode, median

ORDERS = 1_000_000  # orders in the demo at scale 1
SQL = "SELECT * FROM orders"
LIBRARIES = "import duckdb, pyarrow, sqlglot, pydantic"
_CONNECT = "from agnes_mcp.notebook import connect"
GETTING_STARTED = REPO / "notebooks" / "01_getting_started.ipynb"
THREADS = 2  # the workspace sandbox's threads (WorkspaceLimits.threads); DuckDB gets as many


def _wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - started


def _imports(runs: int) -> list[Result]:
    compile_bytecode()
    codes = ("import duckdb", LIBRARIES, "import agnes_mcp.notebook", _CONNECT)
    for code in codes:  # warm the page cache
        _wall(code)
    walls: dict[str, list[float]] = {code: [] for code in codes}
    for _ in range(runs):  # interleaved, so a busy moment hits every command alike
        for code in codes:
            walls[code].append(_wall(code))
    p50 = {code: median(samples) * 1000 for code, samples in walls.items()}
    return [
        Result(
            "import agnes_mcp.notebook, fresh process (p50 wall)",
            p50["import agnes_mcp.notebook"],
            "ms",
            "python -c 'import duckdb'",
            p50["import duckdb"],
            "<= import duckdb",
        ),
        Result(
            "from agnes_mcp.notebook import connect, fresh process (p50 wall)",
            p50[_CONNECT],
            "ms",
            f"python -c '{LIBRARIES}'",
            p50[LIBRARIES],
            "report",
            note=f"import duckdb alone: {p50['import duckdb']:.0f} ms",
        ),
    ]


def _pulled(server: Server, folder: Path) -> None:
    from agnes_sync.pull.pull import pull
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths

    api = ServerApi(server.base_url, server.admin_token)
    try:
        summary = pull(WorkspacePaths(folder), api)
    finally:
        api.close()
    assert summary.failed == [], summary.as_dict()


def _interleaved(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """p50 seconds of each call, after one warm-up each, alternating between them."""
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return {name: median(values) for name, values in samples.items()}


def _dataframes(server: Server, folder: Path, rounds: int) -> list[Result]:
    from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
    from agnes_mcp.notebook import Workspace, connect
    from agnes_mcp.query.workspace_query import WorkspaceLimits
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths

    _pulled(server, folder)
    with connect(folder, server_url=server.base_url, token=server.admin_token) as default:
        capped = default.query(SQL, limit=ORDERS)
    assert capped.truncated and capped.cut, "a default workspace answers at most its row cap"

    limits = WorkspaceLimits(max_rows=2 * ORDERS, max_bytes=4 * 1024**3, threads=THREADS)
    api = ServerApi(server.base_url, server.admin_token)
    ws = Workspace(WorkspaceBackend(WorkspacePaths(folder), api, limits), kind="workspace")
    whole = ws.query(SQL, limit=ORDERS)
    assert whole.row_count == ORDERS and not whole.truncated, repr(whole)

    data = folder / ".agnes" / "data"  # orders.parquet, or orders/<partition>/part-*.parquet
    files = sorted(str(p) for p in [data / "orders.parquet", *(data / "orders").rglob("*.parquet")])
    files = [f for f in files if Path(f).is_file()]
    assert files, "the pull wrote no orders parquet"
    con = duckdb.connect(config={"threads": THREADS})
    listed = ", ".join(f"'{f}'" for f in files)
    con.execute(  # as the workspace's own views read them (agnes_sync.workspace.local_db)
        f"CREATE VIEW orders AS SELECT * FROM read_parquet([{listed}], "
        "union_by_name = true, hive_partitioning = false)"
    )

    def agnes_df() -> Any:
        return ws.query(SQL, limit=ORDERS).df()

    def duckdb_df() -> Any:
        return con.execute(SQL).df()

    def agnes_pl() -> Any:
        return ws.query(SQL, limit=ORDERS).pl()

    def duckdb_pl() -> Any:
        return con.sql(SQL).pl()

    try:
        times = _interleaved(
            {"agnes": agnes_df, "duckdb": duckdb_df, "agnes_pl": agnes_pl, "duckdb_pl": duckdb_pl},
            rounds,
        )
        ours, theirs = agnes_df().dtypes, duckdb_df().dtypes
        types = [f"{c} {ours[c]} (DuckDB: {theirs[c]})" for c in ours.index if ours[c] != theirs[c]]
    finally:
        con.close()
        ws.close()
    speed = times["duckdb"] / times["agnes"]
    return [
        Result(
            f"ws.query('{SQL}').df(), {ORDERS:,} rows, in a workspace (p50)",
            times["agnes"],
            "s",
            "DuckDB's own .df() of the same SELECT on the same parquet (p50)",
            times["duckdb"],
            ">= 0.8x DuckDB's speed (ratio <= 1.25)",
            note=f"speed {speed:.2f}x DuckDB's; workspace row cap raised from 100,000 "
            f"(default: cut, and says so); columns typed differently: {', '.join(types) or 'none'}",
        ),
        Result(
            f"ws.query('{SQL}').pl(), {ORDERS:,} rows, in a workspace (p50)",
            times["agnes_pl"],
            "s",
            "DuckDB's own .pl() of the same SELECT on the same parquet (p50)",
            times["duckdb_pl"],
            "report",
        ),
    ]


def _execute(path: Path, kernel: str, env: dict[str, str], folder: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name=kernel, resources={"metadata": {"path": str(folder)}}
    )
    started = time.perf_counter()
    client.execute(env=env)
    return time.perf_counter() - started


def _notebook(server: Server, root: Path, runs: int) -> Result:
    import nbformat
    from ipykernel.kernelspec import write_kernel_spec
    from nbformat.v4 import new_code_cell, new_notebook

    jupyter = root / "jupyter"
    write_kernel_spec(jupyter / "kernels" / "python3")  # this interpreter, whatever is installed
    empty = root / "empty.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("pass")]), empty)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.pop("MPLBACKEND", None)  # ipykernel picks the inline backend: charts render as PNG
    env.update(
        JUPYTER_PATH=str(jupyter),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        AGNES_SERVER_URL=server.base_url,
        AGNES_TOKEN=server.admin_token,
        AGNES_CONFIG_HOME=str(root / "config"),
        XDG_CACHE_HOME=str(root / "cache"),
        MPLCONFIGDIR=str(root / "matplotlib"),  # not the user's ~/.config/matplotlib
    )
    folder = root / "run"
    folder.mkdir()
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(jupyter)  # where this process looks the kernelspec up
    try:
        _execute(empty, "python3", env, folder)  # warm-up
        full, bare = [], []
        for _ in range(runs):
            full.append(_execute(GETTING_STARTED, "python3", env, folder))
            bare.append(_execute(empty, "python3", env, folder))
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved
    return Result(
        f"{GETTING_STARTED.name} executed by nbclient, demo at scale 1 (p50 wall)",
        median(full),
        "s",
        "a one-cell notebook (pass): kernel start, run, shut down (p50 wall)",
        median(bare),
        "report (kernel start dominates)",
        note=f"the notebook's own cells: {median(full) - median(bare):.2f} s",
    )


def run(quick: bool = False) -> list[Result]:
    results = _imports(10 if quick else 30)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with agnes_server(root / "data", "demo", "--scale", "1") as server:
            results.extend(_dataframes(server, root / "workspace", 3 if quick else 7))
            results.append(_notebook(server, root, 2 if quick else 5))
    return results
