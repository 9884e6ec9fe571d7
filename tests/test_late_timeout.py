"""A query the timeout stops late says so. DuckDB stops a query between batches of 2,048
rows; a function slow on every row (a regular expression whose pattern RE2 cannot run as
a DFA, over 60 KB of text: about a second a row here) holds a batch for seconds past the
deadline, and the refusal said "ran longer than 0.5 s" of a query that ran for four."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import duckdb
import pytest

from agnes_mcp.query.concurrency import in_query_lane
from agnes_mcp.rails.refusals import QueryTimeout
from agnes_mcp.rails.sandbox import Limits, Sandbox, count_rows
from agnes_mcp.rails.watchdog import OVERDUE_SECONDS
from agnes_sync.caller import CALLER, Caller
from tests.conftest import local_table

LIMITS = Limits(rows=100, bytes=1 << 24, timeout_seconds=0.5)
SLOW_ROWS = (
    "SELECT count(*) FROM range(8) t(i) "
    "WHERE regexp_matches(repeat('ab', 30000) || i, '(' || repeat('[ab]', 2000) || ')+x')"
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data = tmp_path_factory.mktemp("late") / "t.parquet"
    duckdb.sql(f"COPY (SELECT 1 AS id) TO '{data}'")
    box = Sandbox([local_table("t", data)], memory_limit="1GB", threads=2)
    yield box
    box.close()


def test_a_timeout_that_stopped_late_says_when_and_why(sandbox: Sandbox) -> None:
    with pytest.raises(QueryTimeout) as caught:
        sandbox.run(SLOW_ROWS, LIMITS)
    late = caught.value.details["stopped_after_seconds"]
    assert late > LIMITS.timeout_seconds + 1
    assert f"stopped only after {late:.1f} s" in caught.value.message
    assert "between batches" in caught.value.message
    # a query stopped on time says nothing more
    with pytest.raises(QueryTimeout) as caught:
        sandbox.run("SELECT count(*) FROM range(1000000) a, range(1000000) b", LIMITS)
    assert "stopped_after_seconds" not in caught.value.details
    assert caught.value.details["limit_seconds"] == LIMITS.timeout_seconds


def test_a_query_the_engine_is_slow_to_stop_answers_its_caller_past_the_timeout(
    sandbox: Sandbox,
) -> None:
    """An MCP or REST caller waited for the slow batch above to end (~4 s past a 0.5 s
    timeout; 18 s in a report). It now hears the timeout ``OVERDUE_SECONDS`` after it,
    saying the query is still stopping, while the query stops on its own thread (with its
    place among the caller's running queries) and ends as before."""
    ended = threading.Event()
    outcome: list[BaseException] = []

    def work() -> None:
        try:
            sandbox.run(SLOW_ROWS, LIMITS)
        except QueryTimeout as stopped:
            outcome.append(stopped)
        finally:
            ended.set()

    with pytest.raises(QueryTimeout) as caught:
        asyncio.run(in_query_lane(work))
    assert not ended.is_set()  # answered while the engine still works on the batch
    assert caught.value.details["still_stopping"] is True
    assert caught.value.details["limit_seconds"] == LIMITS.timeout_seconds
    assert "The engine is still stopping it" in caught.value.message
    assert ended.wait(120)
    assert outcome and outcome[0].details["stopped_after_seconds"] > OVERDUE_SECONDS


def test_a_count_slow_to_stop_is_not_said_to_the_caller(sandbox: Sandbox) -> None:
    """The count of a cut answer may fail (the answer then says "more than"): its late
    stop must not end the caller's call with a timeout the answer never had."""
    heard: list[BaseException] = []
    caller = Caller()
    caller.on_answer_now(heard.append)
    token = CALLER.set(caller)
    try:
        assert count_rows(sandbox.connection, SLOW_ROWS, timeout_seconds=0.5) is None
    finally:
        CALLER.reset(token)
    assert heard == []
    assert caller.early is None
