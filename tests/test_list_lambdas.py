"""Lists a lambda builds: what the lambda adds to each element is counted as it runs
(:mod:`agnes_mcp.rails.list_lambdas`), in the sandbox alone, so every front end and both
backends have it (the corpus runs these shapes through the server and a workspace)."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from agnes_mcp.rails.list_lambdas import ALLOWANCE_BYTES
from agnes_mcp.rails.refusals import QueryFailed
from agnes_mcp.rails.sandbox import Sandbox
from agnes_mcp.rails.value_guards import MAX_VALUE_BYTES, ValueTooLarge
from tests.conftest import local_table
from tests.test_sandbox_memory import LIMITS, GiB, MiB, peak_growth


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data = tmp_path_factory.mktemp("lambdas") / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id, 'word' || range AS s FROM range(100)) TO '{data}'")
    box = Sandbox([local_table("t", data)], memory_limit="2GB", threads=2)
    yield box
    box.close()


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT len(list_transform(range(8000), lambda x: repeat('x', 60000)))", "list_transform"),
        ("SELECT len([repeat(s, 10000) FOR x IN range(8000)]) FROM t", "list_apply"),
        (
            "SELECT len(range(8000).array_transform(lambda x, i: [s, repeat('y', 9000)])) FROM t",
            "array_transform",
        ),
        (
            "SELECT len(list_transform(range(8), lambda x: list_transform(range(8000), "
            "lambda y: repeat('x', 600)))) FROM t",
            "list_transform",
        ),
        (
            "SELECT length(reduce(range(8000), lambda a, b: a || big, '')) FROM (SELECT repeat('q', 60000) AS big)",
            "reduce",
        ),
    ],
)
def test_a_lambda_adding_a_large_value_to_each_element_is_refused_as_it_starts(
    sandbox: Sandbox, sql: str, function: str
) -> None:
    growth, outcome = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert isinstance(outcome, ValueTooLarge), outcome
    assert outcome.details["function"] == function
    assert outcome.details["limit_bytes"] == MAX_VALUE_BYTES
    assert "max_value_bytes" in outcome.message and "lambda" in outcome.message
    assert growth < 512 * MiB, f"grew {growth / MiB:.0f} MiB"


def test_lambdas_that_add_little_answer_as_duckdb_does(sandbox: Sandbox) -> None:
    """A checked lambda (it reads another column) that adds little answers what DuckDB
    answers, its column named as the caller's SQL names it; one made of its element alone
    is not checked at all. A growing one is refused once it passes the bound."""
    checked = "SELECT list_transform([1, 2], lambda x: s || x), [x + id FOR x IN [1]] FROM t"
    plain = "SELECT list_transform(['a', 'b'], lambda x: upper(x) || '!') AS up"
    growing = "SELECT list_transform(range(3000), lambda x: s || repeat('-', 40)) FROM t"
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT range AS id, 'word' || range AS s FROM range(100)")
        for sql in (checked, plain):
            expected = con.sql(sql).to_arrow_table()
            answer = sandbox.run(sql, LIMITS).table
            assert answer.column_names == expected.column_names
            assert answer.to_pylist() == expected.to_pylist()
        assert len(con.execute(growing).fetchall()) == 100  # DuckDB alone builds it
    with pytest.raises(ValueTooLarge) as caught:
        sandbox.run(growing, LIMITS)
    # about 42 bytes an element, all but ALLOWANCE_BYTES of them counted: refused where
    # the counted bytes pass the bound, near the 2,500th element of 3,000
    added = caught.value.details["bytes"]
    assert MAX_VALUE_BYTES < added * (42 - ALLOWANCE_BYTES) / 42 < 1.2 * MAX_VALUE_BYTES


def test_an_engine_error_in_a_checked_lambda_points_nowhere_else(sandbox: Sandbox) -> None:
    """The SQL DuckDB ran was rewritten: its error's position would be one in SQL the
    caller never wrote, so none is given; the growing lambda is refused first."""
    with pytest.raises(QueryFailed) as caught:
        sandbox.run("SELECT list_transform([1], lambda x: s || x) FROM t WHERE id = 'a'", LIMITS)
    assert "Could not convert string 'a'" in caught.value.message
    assert caught.value.details.get("line") is None
    growth, outcome = peak_growth(
        lambda: sandbox.run(
            "SELECT list_transform(range(5000), lambda x: s || repeat('x', 5000)) FROM t", LIMITS
        )
    )
    assert isinstance(outcome, ValueTooLarge), outcome
    assert growth < 1 * GiB
