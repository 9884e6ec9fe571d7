"""The relations one query joins are bounded before DuckDB plans them: its join-order
optimizer does not stop for an interrupt (300 joins of a 7-row table: 115 s against a
30 s timeout). Relations DuckDB plans apart (a materialized CTE's) count apart; an
inlined CTE's count at every read."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from agnes_mcp.rails import relations
from agnes_mcp.rails.refusals import SqlTooLarge
from agnes_mcp.rails.sandbox import Limits, Sandbox
from tests.conftest import local_table

LIMITS = Limits(rows=100, bytes=2**26, timeout_seconds=60)
MAX = relations.MAX_RELATIONS


def _joins(n: int) -> str:
    return "SELECT count(*) AS n FROM p p0 " + " ".join(
        f"JOIN p p{i} ON p{i}.id = p{i - 1}.id AND p{i}.id = p0.id" for i in range(1, n)
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data = tmp_path_factory.mktemp("relations") / "p.parquet"
    duckdb.sql(f"COPY (SELECT range AS id FROM range(7)) TO '{data}'")
    box = Sandbox([local_table("p", data)], memory_limit="512MB", threads=1)
    yield box
    box.close()


@pytest.mark.parametrize(
    ("sql", "counted"),
    [
        (_joins(300), 300),
        (_joins(MAX + 1), MAX + 1),
        ("SELECT count(*) FROM " + ", ".join(f"p p{i}" for i in range(MAX + 1)), MAX + 1),
        # subqueries in expressions are planned as joins too
        ("SELECT count(*) FROM p WHERE " + " AND ".join(["id IN (SELECT id FROM p)"] * MAX), 129),
        # scalar subqueries with no table, written with no comma, JOIN or FROM
        ("SELECT " + " + ".join(["(SELECT 1)"] * (MAX + 1)) + " AS n", MAX + 1),
        # an inlined CTE is planned again at every read
        (
            "WITH c AS NOT MATERIALIZED (SELECT p0.id FROM "
            + ", ".join(f"p p{i}" for i in range(40))
            + ") SELECT count(*) FROM c, c d",
            80,
        ),
    ],
)
def test_a_query_joining_too_many_relations_is_refused_before_it_is_planned(
    sandbox: Sandbox, sql: str, counted: int
) -> None:
    with pytest.raises(SqlTooLarge) as caught:
        sandbox.run(sql, LIMITS)
    refusal = caught.value
    assert refusal.code == "sql_too_large" and refusal.status == 400
    assert refusal.details == {"relations": counted, "limit": MAX}
    assert refusal.hint


@pytest.mark.parametrize(
    ("sql", "answer"),
    [
        (_joins(MAX), 7),
        # 40 materialized CTEs of two reads each: each is planned on its own
        (
            "WITH c0 AS (SELECT id FROM p), "
            + ", ".join(
                f"c{i} AS (SELECT a.id FROM c{i - 1} a JOIN c{i - 1} b USING (id))"
                for i in range(1, 40)
            )
            + " SELECT count(*) AS n FROM c39",
            7,
        ),
        # many commas, and an expression too deep to walk by scopes: counted all told
        (
            "SELECT count(*) + " + " + ".join(["1"] * 250) + " AS n FROM p, p q "
            f"WHERE p.id IN ({', '.join(str(i) for i in range(MAX))})",
            49 + 250,
        ),
    ],
)
def test_queries_within_the_bound_answer(sandbox: Sandbox, sql: str, answer: int) -> None:
    assert sandbox.run(sql, LIMITS).table.to_pylist() == [{"n": answer}]
