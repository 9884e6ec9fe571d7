"""The bytes a DuckDB query really reads from a database file, for judging scan estimates.

Measured in a fresh process from ``/proc/self/io`` ``rchar`` (bytes returned by read
calls, from the page cache or not) around the query, less what a trivial statement
reads. DuckDB's own profiler does not count reads made by parallel aggregations.
Linux only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_MEASURE = """
import sys, duckdb
def rchar():
    for line in open('/proc/self/io'):
        if line.startswith('rchar'):
            return int(line.split()[1])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"ATTACH '{sys.argv[1]}' AS warehouse (READ_ONLY)")
con.execute("USE warehouse")
con.execute("SELECT 1").fetchall()
before = rchar()
con.execute("SELECT 42").fetchall()
floor = rchar() - before
before = rchar()
con.execute(sys.argv[2]).fetchall()
print(max(0, rchar() - before - floor))
"""


def bytes_read(database: Path, sql: str) -> int:
    """Bytes DuckDB reads from ``database`` to run ``sql`` (attached as ``warehouse``)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(database), sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)
