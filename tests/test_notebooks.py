"""Every notebook in ``notebooks/`` runs top to bottom against the demo with no edits, in a
real Jupyter kernel of this environment (``nbclient`` + ``ipykernel``), both ways a user
runs it: outside any workspace (``AGNES_SERVER_URL`` and ``AGNES_TOKEN`` set, empty config
and cache homes; tables not pulled are read through the server) and from a folder inside a
pulled workspace (every query of a pulled table runs in the local sandbox).

Each notebook runs twice in one kernel ("Run All", then "Run All" again, as people do):
the second pass must not fail either (a snapshot taken again, a pull with nothing to do).
A notebook added to the folder is picked up by the glob; :data:`EXPECTED` adds checks on
what named cells show. The committed files are checked too: no stored outputs, the
``python3`` kernel.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import DemoServer, pull_into_workspace
from tests.notebook_harness import isolate

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL = "python3"  # the kernelspec every example notebook names
CELL_TIMEOUT = 120  # seconds a cell may take before nbclient gives up


@dataclass(frozen=True)
class Shows:
    """The code cell that is ``marker``, else the one cell holding it, shows ``mime`` output
    holding ``text`` (``{engine}``: the engine local tables are read by, where it runs)."""

    marker: str
    mime: str
    text: str = ""


EXPECTED: dict[str, list[Shows]] = {
    "01_getting_started": [
        Shows("ws = connect()", "text/plain", "<Agnes "),
        Shows("catalog = ws.catalog()", "text/html", "web_sessions"),
        Shows('ws.schema("orders")', "text/html", "total_amount"),
        Shows("by_status = ws.query(", "text/html", "<td>completed</td>"),
        Shows("by_status = ws.query(", "text/html", "3 rows"),
        Shows("by_status = ws.query(", "text/html", "· {engine} ·"),
        Shows("first_orders = ws.query(", "stream", "first 10 of 2,000 rows"),
        Shows("by_status.pl()", "text/plain", "completed"),
        Shows("monthly.plot(", "image/png"),
        Shows("%agnes schema products", "text/html", "category"),
        Shows("%%agnes_sql -o web_months", "text/html", "orders (local"),
        Shows("web_months.tail(3)", "text/plain", "revenue"),
    ],
    "02_remote_table_snapshot": [
        Shows("except AgnesRefusal", "stream", "code: remote_table_needs_snapshot"),
        Shows("except AgnesRefusal", "stream", '"tool": "snapshot_create"'),
        Shows("ws.query_remote(", "text/html", "duckdb_warehouse"),
        Shows("ws.snapshot_estimate(", "stream", "fits: True"),
        Shows('name="recent_sessions"', "stream", "the warehouse scanned"),
        Shows("ws.snapshots()", "text/html", "recent_sessions"),
        Shows("FROM recent_sessions", "text/html", "recent_sessions (snapshot"),
        Shows("sessions.plot(", "image/png"),
    ],
    "03_company_metrics": [
        Shows("ws.metrics()", "text/html", "revenue/total_revenue"),
        Shows('ws.metric_show("revenue/total_revenue")', "stream", "expression: sum(total_amount)"),
        Shows('"revenue/total_revenue",', "text/html", "<td>web</td>"),
        Shows("print(revenue.sql)", "stream", "DATE_TRUNC('MONTH', order_date)"),
        Shows("by_channel.plot(", "image/png"),
        Shows('"product/active_users"', "text/html", "web_sessions (remote"),
    ],
    "04_join_snapshot_with_local": [
        Shows("ws.pull()", "text/plain", "failed=[]"),
        Shows('name="sessions_30d"', "stream", "signed-in sessions since"),
        Shows("by_segment = ws.query(", "text/html", "customers (local"),
        Shows("by_segment.provenance.tables", "text/plain", "('sessions_30d', 'snapshot')"),
        Shows("LEFT JOIN spend", "text/html", "<th>buyers</th>"),
        Shows('frame[["visitors", "buyers"]].plot(', "image/png"),
        Shows("con = ws.duckdb()", "stream", "[("),
    ],
}


# --- the kernel and the user's environment -------------------------------------------------


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python3`` pinned to this interpreter: a kernelspec written into a private
    ``JUPYTER_PATH`` (searched before the user's and the environment's own), so a
    developer's ``~/.local/share/jupyter`` or a fresh CI clone make no difference.

    Matplotlib's config and font cache are a private folder too (``MPLCONFIGDIR``, which
    no test's environment changes), built here once: a kernel that builds the cache
    itself logs "Matplotlib is building the font cache" to a cell's stderr when that
    takes over 5 s (a busy machine). It was built by importing matplotlib here, into
    ``~/.cache`` (the user's home), while each kernel looked in its test's fresh
    ``XDG_CACHE_HOME`` and built it again."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    jupyter = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter / "kernels" / KERNEL)
    matplotlib_home = tmp_path_factory.mktemp("matplotlib")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(jupyter / "runtime"))
        patch.setenv("IPYTHONDIR", str(jupyter / "ipython"))  # no profile's start-up files
        patch.delenv("MPLBACKEND", raising=False)  # ipykernel then picks the inline backend
        patch.setenv("MPLCONFIGDIR", str(matplotlib_home))
        subprocess.run(  # as a kernel would import it: builds the font cache there
            [sys.executable, "-c", "import matplotlib.font_manager"], check=True, timeout=120
        )
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        assert spec.argv[0] == sys.executable, spec.argv
        yield KERNEL


@dataclass(frozen=True)
class Place:
    """Where a notebook runs: its folder, and the engine its local tables are read by."""

    folder: Path
    engine: str


@pytest.fixture(params=["outside", "workspace"])
def as_user(
    request: pytest.FixtureRequest,
    demo_server: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Place:
    """The analyst's environment (the kernel inherits it), and the folder the notebook runs
    in: a plain folder, or one inside a workspace the analyst pulled."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    if request.param == "workspace":
        workspace = tmp_path / "workspace"
        pull_into_workspace(demo_server.live.base_url, demo_server.analyst_token, workspace)
        place = Place(workspace / "analysis", "duckdb (workspace)")
    else:
        place = Place(tmp_path / "notebook", "duckdb (server)")
    place.folder.mkdir()
    return place


# --- running and reading ---------------------------------------------------------------------


def run_twice(path: Path, kernel: str, folder: Path) -> tuple[Any, Any]:
    """The notebook after one "Run All", and after a second one in the same kernel."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel,
        resources={"metadata": {"path": str(folder)}},
    )
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        first = copy.deepcopy(notebook)
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
    return first, notebook


def shown(output: Any, mime: str) -> str | None:
    """The ``mime`` text of one output (``stream`` for printed text), or None."""
    if mime == "stream":
        return output["text"] if output["output_type"] == "stream" else None
    data = output.get("data", {})
    return str(data[mime]) if mime in data else None


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def cells_for(notebook: Any, marker: str) -> list[Any]:
    """The code cells that are ``marker``, else those holding it."""
    cells = code_cells(notebook)
    exact = [cell for cell in cells if cell.source.strip() == marker]
    return exact or [cell for cell in cells if marker in cell.source]


# --- the tests -------------------------------------------------------------------------------


def test_the_folder_holds_the_example_notebooks() -> None:
    names = {path.stem for path in NOTEBOOKS}
    assert set(EXPECTED) <= names, f"checks for notebooks that are gone: {set(EXPECTED) - names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_notebook_is_committed_clean(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    assert notebook.metadata["kernelspec"]["name"] == KERNEL
    for cell in code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{path.name}: clear the outputs before committing ({cell.source[:60]!r})"
        )


def test_a_kernel_finds_matplotlib_s_font_cache_built(kernel: str, tmp_path: Path) -> None:
    """Not built by the first plot of each kernel (see ``kernel``), nor in the user's home."""
    source = (
        "import matplotlib, pathlib\nprint(list(pathlib.Path(matplotlib.get_cachedir()).iterdir()))"
    )
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.cells = [nbformat.v4.new_code_cell(source)]  # type: ignore[no-untyped-call]
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name=kernel).execute(cwd=str(tmp_path))
    (printed,) = notebook.cells[0].outputs
    assert "fontlist-" in printed["text"], printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_notebook_runs_top_to_bottom(path: Path, kernel: str, as_user: Place) -> None:
    first, second = run_twice(path, kernel, as_user.folder)  # a failing cell raises

    for run, executed in (("first", first), ("second", second)):
        for cell in code_cells(executed):
            for output in cell.outputs:
                assert output["output_type"] != "error", (run, cell.source)
                assert output.get("name") != "stderr", (run, cell.source, output["text"])

    for check in EXPECTED.get(path.stem, []):
        cells = cells_for(first, check.marker)
        assert len(cells) == 1, f"{path.name}: {len(cells)} cells hold {check.marker!r}"
        texts = [shown(output, check.mime) for output in cells[0].outputs]
        found = [text for text in texts if text is not None]
        assert found, f"{path.name}: the cell with {check.marker!r} shows no {check.mime}"
        expected = check.text.format(engine=as_user.engine)
        assert any(expected in text for text in found), (expected, check, found)
