"""A query the timeout stops late says so. DuckDB stops a query between batches of 2,048
rows; a function slow on every row (a regular expression whose pattern RE2 cannot run as
a DFA, over 60 KB of text: about a second a row here) holds a batch for seconds past the
deadline, and the refusal said "ran longer than 0.5 s" of a query that ran for four."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from agnes_mcp.rails.refusals import QueryTimeout
from agnes_mcp.rails.sandbox import Limits, Sandbox
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
