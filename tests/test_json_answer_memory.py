"""The JSON answer of ``POST /api/query`` streams from the Arrow rows in bounded memory.

It was built whole first (every row as Python values, then their JSON text, then the
document): three to four times the Arrow answer's memory, about 1 GB for an answer at the
default 256 MB byte cap, and a 500 (MemoryError) where memory was short. The server runs
as a process of its own, so its peak resident memory (``VmHWM``) is its answer's alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.server_process import server_env, serving

ARROW = {"Accept": "application/vnd.apache.arrow.stream"}
CAP = 96 * 1024**2
# 24 MB as Arrow; as JSON six times that (a control character is written \u0001), so the
# byte cap cuts it.
SQL = "SELECT i, repeat(chr(1), 4000) AS s FROM range(6000) t(i)"


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_the_json_answer_streams_in_bounded_memory_and_still_says_it_was_cut(
    tmp_path: Path,
) -> None:
    env = server_env(tmp_path, AGNES_SCAN_CAPS__MAX_RESULT_BYTES=str(CAP))
    with (
        serving(tmp_path / "data", env) as (process, base_url, token),
        httpx.Client(
            base_url=base_url, timeout=300, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        warm = client.post("/api/query", json={"sql": "SELECT 1 AS x", "limit": 1})
        assert warm.status_code == 200, warm.text
        # the Arrow answer first: its peak is the query's own (DuckDB, the Arrow rows)
        arrow = client.post("/api/query", json={"sql": SQL, "limit": 6000}, headers=ARROW)
        assert arrow.status_code == 200
        del arrow
        before = _peak_kib(process.pid)
        size, head, tail = 0, b"", b""
        with client.stream("POST", "/api/query", json={"sql": SQL, "limit": 6000}) as answer:
            assert answer.status_code == 200
            for chunk in answer.iter_bytes():
                head = head or chunk[:200]
                tail = (tail + chunk)[-4096:]
                size += len(chunk)
        grown_mib = (_peak_kib(process.pid) - before) / 1024
    assert head.startswith(b'{"columns":[{"name":"i","type":"int64"}')
    assert size <= CAP + 4096
    # the rows came first; what is said about them closes the same document
    said = json.loads(b'{"rows":[' + tail[tail.index(b"]],") + 1 :])
    assert said["truncated"] is True and said["reason"] == "bytes"
    assert said["truncation"]["reason"] == "bytes"
    assert "byte cap (max_result_bytes, 96.0 MiB)" in said["truncation"]["how_to_get_more"]
    assert 0 < said["row_count"] < 6000 and said["total_rows"] == 6000
    assert said["provenance"]["row_count"] == said["row_count"]
    # built whole, the JSON answer took its text (96 MB) and the rows as Python values on
    # top of what the Arrow answer took (240 MiB more in all); streamed, one slice more
    assert grown_mib < 48, f"the JSON answer's peak memory was {grown_mib:.0f} MiB more"


# A thousand 60 KB blobs, then 99,000 rows of nothing: 58 MB as Arrow, the average row
# 600 bytes; a blob's byte is five characters of JSON ("\\x01").
BLOBS = "SELECT i, CASE WHEN i < 1000 THEN repeat('\\x01'::BLOB, 60000) END AS b FROM range(100000) t(i)"


def test_large_rows_together_are_rendered_a_slice_at_a_time_too(tmp_path: Path) -> None:
    """A slice's length came from the answer's average row: the first slice held every
    blob (60 MB of Arrow) and rendered a gigabyte of text at once. A slice is now cut to
    about SLICE_BYTES of its own rows."""
    env = server_env(tmp_path, AGNES_SCAN_CAPS__MAX_RESULT_BYTES=str(CAP))
    with (
        serving(tmp_path / "data", env) as (process, base_url, token),
        httpx.Client(
            base_url=base_url, timeout=300, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        arrow = client.post("/api/query", json={"sql": BLOBS, "limit": 100000}, headers=ARROW)
        assert arrow.status_code == 200, arrow.text
        del arrow
        before = _peak_kib(process.pid)
        size, tail = 0, b""
        with client.stream("POST", "/api/query", json={"sql": BLOBS, "limit": 100000}) as answer:
            assert answer.status_code == 200
            for chunk in answer.iter_bytes():
                tail = (tail + chunk)[-4096:]
                size += len(chunk)
        grown_mib = (_peak_kib(process.pid) - before) / 1024
    said = json.loads(b'{"rows":[' + tail[tail.index(b"]],") + 1 :])
    assert said["truncated"] is True and said["reason"] == "bytes"
    assert size <= CAP + 4096
    assert grown_mib < 96, f"the JSON answer's peak memory was {grown_mib:.0f} MiB more"
