"""``total_rows`` of a cut answer is counted in what is left of the query's timeout: the
answer and its count together stay within ``query_timeout_seconds``, which the server
promises a query's place is free by (``retry_after_seconds``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from agnes_mcp.rails.sandbox import Limits, Sandbox
from agnes_mcp.rails.watchdog import WATCHDOG
from tests.conftest import DemoServer, local_table, running_demo


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The timeout of every statement the watchdog watches from now on."""
    seconds: list[float] = []
    watch = WATCHDOG.watch

    def recording(
        timeout: float,
        interrupt: Callable[[], object],
        overdue: Callable[[], object] | None = None,
    ) -> int:
        seconds.append(timeout)
        return watch(timeout, interrupt, overdue)

    monkeypatch.setattr(WATCHDOG, "watch", recording)
    return seconds


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(tmp_path_factory.mktemp("count-demo"), query_timeout_seconds=3) as server:
        yield server


def test_the_count_of_a_cut_answer_stays_within_the_query_timeout(
    demo: DemoServer, watched: list[float]
) -> None:
    with demo.client() as analyst:
        answer = analyst.post("/api/query", json={"sql": "SELECT * FROM orders", "limit": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["truncated"] and body["total_rows"] > 5
    assert len(watched) == 2  # the answer, then its count
    # the count has what the answer left of the 3 s (it had min(3, 5) s of its own)
    assert watched[0] == 3 and 0 < watched[1] < 3


def test_no_count_is_tried_once_the_timeout_is_spent(tmp_path: Path, watched: list[float]) -> None:
    data = tmp_path / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id FROM range(100)) TO '{data}'")
    box = Sandbox([local_table("t", data)], memory_limit="256MB", threads=1)
    limits = Limits(rows=5, bytes=2**20, timeout_seconds=2)
    try:
        assert box.count("SELECT * FROM t", limits, spent=2.5) is None
        assert watched == []
        assert box.count("SELECT * FROM t", limits, spent=0.5) == 100
        assert watched == [1.5]
    finally:
        box.close()
