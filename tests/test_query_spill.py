"""Disk a query may spill to past its memory limit: a private folder of its own, at most
``query_spill_bytes``, never ``.tmp`` in the working folder up to 90% of the disk (DuckDB's
defaults, which one query sorting a cross join could fill)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from agnes_mcp.rails import spill
from agnes_mcp.rails.sandbox import Limits, MemoryLimitExceeded, Sandbox
from tests.conftest import DemoServer, local_table, running_demo

MiB = 1024**2
LIMITS = Limits(rows=10, bytes=64 * MiB, timeout_seconds=120)
# 8 million groups: past a 64 MB memory limit the aggregate must spill.
BIG_GROUP_BY = (
    "SELECT count(*) AS n FROM (SELECT s, count(*) FROM "
    "(SELECT 'row ' || x AS s FROM range(8000000) t(x)) GROUP BY s)"
)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    data = tmp_path / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id FROM range(10)) TO '{data}'")
    return data


def _spill_folder(box: Sandbox) -> Path:
    row = box.connection.raw.execute("SELECT current_setting('temp_directory')").fetchone()
    assert row is not None
    return Path(str(row[0]))


def test_a_query_spills_to_a_private_folder_removed_with_its_sandbox(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    box = Sandbox([local_table("t", table)], memory_limit="64MB", threads=1, spill_bytes=2**31)
    folder = _spill_folder(box)
    try:
        assert folder.parent.name.startswith("agnes-spill-")
        assert folder.parent.stat().st_mode & 0o777 == 0o700
        result = box.run(BIG_GROUP_BY, LIMITS)
        assert result.table.to_pylist() == [{"n": 8_000_000}]
        assert folder.is_dir()  # it spilled there
    finally:
        box.close()
    assert not folder.exists()
    assert not (tmp_path / ".tmp").exists()


def test_spilling_past_its_budget_is_refused_naming_the_setting(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    box = Sandbox([local_table("t", table)], memory_limit="64MB", threads=1, spill_bytes=16 * MiB)
    try:
        with pytest.raises(MemoryLimitExceeded) as caught:
            box.run(BIG_GROUP_BY, LIMITS)
    finally:
        box.close()
    refusal = caught.value
    assert refusal.code == "memory_limit_exceeded" and refusal.status == 400
    assert refusal.details == {"limit_name": "query_spill_bytes"}
    assert "disk" in refusal.message and "PRAGMA" not in refusal.message
    assert "query_spill_bytes" in (refusal.hint or "")
    assert not (tmp_path / ".tmp").exists()


def test_the_default_budget_is_not_the_disk() -> None:
    box = Sandbox([], memory_limit="64MB", threads=1)
    try:
        row = box.connection.raw.execute(
            "SELECT current_setting('max_temp_directory_size')"
        ).fetchone()
    finally:
        box.close()
    assert row is not None and row[0] == "1.0 GiB"
    assert spill.SPILL_BYTES == 1024**3


@pytest.fixture(scope="module")
def spill_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(
        tmp_path_factory.mktemp("spill-demo"), query_memory_limit="64MB", query_spill_bytes="16MiB"
    ) as demo:
        yield demo


def test_the_server_bounds_what_a_query_spills(spill_demo: DemoServer) -> None:
    with spill_demo.client() as analyst:
        refused = analyst.post("/api/query", json={"sql": BIG_GROUP_BY})
        fine = analyst.post(
            "/api/query", json={"sql": "SELECT status, count(*) FROM orders GROUP BY 1"}
        )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "memory_limit_exceeded"
    assert error["details"] == {"limit_name": "query_spill_bytes"}
    assert fine.status_code == 200, fine.text
