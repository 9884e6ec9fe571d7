"""``agnes query --format csv`` writes its rows a slice at a time: the whole answer as
Python values (and again as their text forms) took four to six times its Arrow memory in
the CLI's process. Measured in a process of its own, whose peak resident memory is the
writing's alone."""

from __future__ import annotations

import pytest

from tests.server_process import child_json

CHILD = """
import contextlib, json, os, re, sys
from pathlib import Path
import duckdb
from agnes_mcp.rails.results import Answer, Provenance
from cli.answer_output import print_answer

def status(field):
    return int(re.search(rf"^{field}:\\s+(\\d+) kB", Path("/proc/self/status").read_text(), re.M)[1])

columns = ", ".join(f"range * {i} AS c{i}" for i in range(20))
table = duckdb.sql(f"SELECT {columns} FROM range(100000)").to_arrow_table()
answer = Answer(
    table=table, row_count=table.num_rows, truncated=False,
    provenance=Provenance(tables=[], engine="duckdb", bytes_scanned=0,
                          row_count=table.num_rows, duration_ms=1.0, fingerprint="f"),
)
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) from now
before = status("VmRSS")
with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
    code = print_answer(answer, "csv")
sys.stderr.flush(); print(json.dumps({"code": code, "grown_kib": status("VmHWM") - before, "arrow": table.nbytes}))
"""


def test_csv_is_written_in_bounded_memory() -> None:
    seen = child_json(CHILD)
    assert seen["code"] == 0
    # 16 MB as Arrow; as Python values and their text, over 100 MiB more
    assert seen["arrow"] >= 16_000_000
    assert seen["grown_kib"] < 24 * 1024, f"grew {seen['grown_kib'] // 1024} MiB"


# A thousand 60 KB blobs, then 99,000 rows of nothing: 58 MB as Arrow. As text a blob's
# byte is four characters (\x01), five in JSON.
BLOBS = CHILD.replace(
    'table = duckdb.sql(f"SELECT {columns} FROM range(100000)").to_arrow_table()',
    "table = duckdb.sql(\"SELECT i, CASE WHEN i < 1000 THEN repeat('\\\\x01'::BLOB, 60000) END "
    'AS b FROM range(100000) t(i)").to_arrow_table()',
).replace('print_answer(answer, "csv")', "print_answer(answer, sys.argv[1])")


@pytest.mark.parametrize("form", ["csv", "json"])
def test_large_rows_together_are_written_a_slice_at_a_time(form: str) -> None:
    """The JSON form rendered the whole answer at once, and the CSV form slices of 1,024
    rows whatever their size: 58 MB of blobs at the head of an answer became gigabytes of
    text. Both now render slices of about a megabyte of Arrow."""
    assert BLOBS != CHILD
    seen = child_json(BLOBS, form)
    assert seen["code"] == 0
    assert seen["arrow"] >= 60_000_000
    assert seen["grown_kib"] < 48 * 1024, f"grew {seen['grown_kib'] // 1024} MiB"
