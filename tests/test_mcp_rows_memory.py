"""The MCP tools convert an answer's rows to JSON a chunk at a time as the output budget
asks for them; a chunk was 256 rows whatever their size, so showing one row of an answer
of 200 KB blobs converted 48 MB of Arrow (300 MB as Python text). Measured in a process of
its own, whose peak resident memory is the conversion's alone."""

from __future__ import annotations

from tests.server_process import child_json

CHILD = """
import json, re
from pathlib import Path
import duckdb
from agnes_mcp.mcp_server.output_budget import _Converted

def status(field):
    return int(re.search(rf"^{field}:\\s+(\\d+) kB", Path("/proc/self/status").read_text(), re.M)[1])

table = duckdb.sql("SELECT i, repeat('\\\\x01'::BLOB, 200000) AS b FROM range(256) t(i)").to_arrow_table()
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) from now
before = status("VmRSS")
rows = _Converted(table)
shown = rows.upto(1)
print(json.dumps({"shown": shown, "grown_kib": status("VmHWM") - before, "arrow": table.nbytes}))
"""


def test_showing_a_row_of_large_rows_converts_a_few_of_them() -> None:
    seen = child_json(CHILD)
    assert seen["shown"] == 1
    assert seen["arrow"] >= 50_000_000
    assert seen["grown_kib"] < 64 * 1024, f"grew {seen['grown_kib'] // 1024} MiB"
