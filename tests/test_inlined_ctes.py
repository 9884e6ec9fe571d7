"""CTEs marked NOT MATERIALIZED are copied into every read of them by DuckDB's binder,
outside the query timeout and memory_limit: the sandbox counts the copies on DuckDB's own
parse tree and refuses a query they would blow up (``sql_too_large``), while such CTEs of
ordinary size answer as DuckDB does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from agnes_mcp.rails import inlined_ctes
from agnes_mcp.rails.refusals import SqlTooLarge
from agnes_mcp.rails.sandbox import Limits, Sandbox
from tests.conftest import local_table

LIMITS = Limits(rows=1000, bytes=64 * 1024**2, timeout_seconds=60)


def _tree(sql: str) -> Any:
    with duckdb.connect() as con:
        row = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    assert row is not None
    return json.loads(row[0])


def _chain(steps: int, marker: str = "NOT MATERIALIZED") -> str:
    """CTEs each reading the one before twice (two rows each): 2^steps copies of the
    first when inlined."""
    ctes = [f"t0 AS {marker} (SELECT id AS x FROM t LIMIT 2)"]
    ctes += [
        f"t{i} AS {marker} (SELECT max(x) AS x FROM t{i - 1} UNION ALL SELECT min(x) FROM t{i - 1})"
        for i in range(1, steps + 1)
    ]
    return f"WITH {', '.join(ctes)} SELECT count(*) AS n FROM t{steps}"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data = tmp_path_factory.mktemp("ctes") / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id FROM range(100)) TO '{data}'")
    box = Sandbox([local_table("t", data)], memory_limit="1GB", threads=1)
    yield box
    box.close()


def test_a_chain_of_inlined_ctes_is_refused_before_duckdb_binds_it(sandbox: Sandbox) -> None:
    with pytest.raises(SqlTooLarge) as caught:
        sandbox.run(_chain(40), LIMITS)  # 2^40 copies: would never finish binding
    refusal = caught.value
    assert refusal.code == "sql_too_large" and refusal.status == 400
    assert refusal.details["limit"] == inlined_ctes.MAX_INLINED_NODES
    assert refusal.details["nodes"] > 2**40
    assert "NOT MATERIALIZED" in refusal.message and "Drop NOT MATERIALIZED" in (refusal.hint or "")


@pytest.mark.parametrize("marker", ["", "MATERIALIZED"])
def test_ctes_duckdb_computes_once_are_not_counted_as_copies(sandbox: Sandbox, marker: str) -> None:
    """Without the keyword (or with MATERIALIZED) DuckDB reads a CTE's result wherever the
    CTE is read: the same chain binds at once and answers."""
    result = sandbox.run(_chain(40, marker), LIMITS)
    assert result.table.to_pylist() == [{"n": 2}]


@pytest.mark.parametrize(
    "sql",
    [
        _chain(6),
        "WITH a AS NOT MATERIALIZED (SELECT id FROM t) SELECT count(*) AS n FROM a, a b "
        "WHERE a.id = b.id",
        # a name defined again inside hides the outer CTE (materialized or not)
        "WITH a AS NOT MATERIALIZED (SELECT id FROM t) SELECT (WITH a AS (SELECT 1 AS id) "
        "SELECT count(*) FROM a) AS n",
        "WITH RECURSIVE r AS NOT MATERIALIZED (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r "
        "WHERE n < 5) SELECT sum(n) AS n FROM r",
    ],
)
def test_inlined_ctes_of_ordinary_size_answer_as_duckdb_does(sandbox: Sandbox, sql: str) -> None:
    plain = duckdb.connect()
    plain.execute("CREATE VIEW t AS SELECT range AS id FROM range(100)")
    assert sandbox.run(sql, LIMITS).table.to_pylist() == plain.sql(sql).to_arrow_table().to_pylist()


def test_copies_are_counted_through_scopes() -> None:
    """A reference counts its CTE's body where the name is in scope, and only there."""
    body = "(SELECT x FROM u UNION ALL SELECT x FROM u)"
    inner = "u AS NOT MATERIALIZED (SELECT 1 AS x)"
    doubled = f"WITH {inner}, v AS NOT MATERIALIZED {body} SELECT * FROM v, v w"
    hidden = f"WITH {inner} SELECT * FROM (WITH u AS (SELECT 2 AS x) SELECT * FROM u, u w)"

    def added(sql: str) -> int:
        tree = _tree(sql)
        return inlined_ctes._size(tree, {}, copies=True) - inlined_ctes._size(
            tree, {}, copies=False
        )

    assert added(doubled) > 0
    assert added(hidden) <= 0  # the outer u is never read, so never copied
    assert added(f"WITH {inner} SELECT * FROM main.u") <= 0  # a table, not the CTE
    assert not inlined_ctes.needs_check("SELECT 1") and inlined_ctes.needs_check(doubled)
