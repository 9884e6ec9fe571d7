"""Rows taken out of a cut Result still say they are cut, in a real Jupyter kernel.

A ``Result`` shows its counts and what cut it; the DataFrame (or Arrow table) a notebook
takes out of it does not, so a sum over ``ws.query(...).df()`` could silently be a sum over
the first 1,000 rows. ``.df()``, ``.pl()`` and ``.arrow()`` of a cut result warn
(``TruncatedResultWarning``, shown under the cell), and a pandas frame carries the counts
in ``attrs["agnes"]``. A whole result, and ``%%agnes_sql -o`` (whose shown Result says it
already), stay quiet.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbclient import NotebookClient

from tests.test_notebooks import CELL_TIMEOUT, Place, as_user, kernel  # noqa: F401 - fixtures

CELLS = [
    "from agnes_mcp.notebook import connect\nws = connect()",
    'cut = ws.query("SELECT * FROM orders ORDER BY order_id", limit=10)',
    "frame = cut.df()\nprint(frame.attrs['agnes']['truncated'], len(frame))",
    "cut.pl().height",
    "cut.arrow().num_rows",
    'whole = ws.query("SELECT count(*) AS n FROM orders")\nwhole.df().attrs["agnes"]["truncated"]',
    "%load_ext agnes_mcp.notebook\n%agnes use ws",
    "%%agnes_sql --limit 5 -o few\nSELECT order_id FROM orders ORDER BY order_id",
    "len(few), few.attrs['agnes']['cut'] is not None",
]


def run(kernel_name: str, place: Place) -> list[list[Any]]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(place.folder)}},
    )
    client.execute()
    return [cell.outputs for cell in notebook.cells]


def stderr(outputs: list[Any]) -> str:
    return "".join(o["text"] for o in outputs if o.get("name") == "stderr")


def test_rows_taken_out_of_a_cut_result_say_so(kernel: str, as_user: Place) -> None:  # noqa: F811
    outputs = run(kernel, as_user)
    for taken in outputs[2:5]:  # .df(), .pl(), .arrow()
        warned = stderr(taken)
        assert "TruncatedResultWarning" in warned, taken
        assert "10 of 2,000 rows" in warned and "limit 10" in warned, warned
    assert "True 10" in "".join(o.get("text", "") for o in outputs[2])
    for quiet in (outputs[5], outputs[7], outputs[8]):  # a whole result; the magic's frame
        assert stderr(quiet) == "", quiet
    assert any("Truncated" in o.get("data", {}).get("text/html", "") for o in outputs[7])
    assert "(5, True)" in outputs[8][0]["data"]["text/plain"]
