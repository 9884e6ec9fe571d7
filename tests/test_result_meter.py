"""A large value repeated across rows (by a scalar subquery, a join, an unnest) or columns
is held once by DuckDB but copied per row by the answer's conversion to Arrow, outside
memory_limit: a 2 MB string_agg given to 200,000 rows made a 4 GB batch before the byte
cap could stop it. Such an answer is metered by DuckDB before it is converted and cut at
the byte cap; ordinary answers come back as DuckDB gives them."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest

from agnes_mcp.rails import result_meter
from agnes_mcp.rails.answer_stream import faithful_sql
from agnes_mcp.rails.sandbox import Limits, Sandbox
from tests.conftest import local_table
from tests.test_sandbox_memory import ROWS, ROWS_VIEW, GiB, MiB, peak_growth, rows_sandbox

CAP = 64 * MiB
LIMITS = Limits(rows=100_000, bytes=CAP, timeout_seconds=120)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = rows_sandbox(tmp_path_factory.mktemp("meter"))
    yield box
    box.close()


@pytest.mark.parametrize(
    "sql",
    [
        # a 2 MB string from a scalar subquery on every row
        "SELECT id, (SELECT string_agg(s, ',') FROM t) AS s FROM t",
        # a 1.6 MB list the same way
        "SELECT id, (SELECT list(id) FROM t) AS l FROM t",
        # joined from a CTE, and in a struct, a map and a list of lists
        "WITH a AS (SELECT string_agg(s, ',') AS s FROM t) "
        "SELECT t.id, {'v': a.s} AS st, map([1], [a.s]) AS m, [[a.s]] AS ll FROM t, a",
        # one value in many columns of one row
        "WITH a AS (SELECT string_agg(s, ',') AS s FROM t) SELECT "
        + ", ".join(f"a.s AS c{i}" for i in range(600))
        + " FROM a",
        # a top-n aggregate's list, and a value repeated by unnest
        "SELECT (SELECT max(id, 100000) FROM t) AS top FROM t",
        "SELECT unnest(range(5000)) AS n, (SELECT string_agg(s, ',') FROM t) AS s",
        # in a union's member, and a geometry of 200,000 points (3.2 MB)
        "SELECT id, union_value(v := (SELECT string_agg(s, ',') FROM t)) AS u FROM t",
        "SELECT id, (SELECT ('LINESTRING(' || string_agg(id || ' 1', ',') || ')')::GEOMETRY "
        "FROM t) AS g FROM t",
        # grown by an encoder nested (1 MB), and by CTEs doubling a literal (2 MB)
        "SELECT id, " + "hex(" * 17 + "'abcdefgh'" + ")" * 17 + " AS h FROM t",
        "WITH a0 AS (SELECT '"
        + "x" * 1000
        + "' AS s), "
        + ", ".join(f"a{i} AS (SELECT s || s AS s FROM a{i - 1})" for i in range(1, 12))
        + " SELECT t.id, a11.s FROM t, a11",
    ],
)
def test_a_large_value_repeated_is_cut_at_the_byte_cap(sandbox: Sandbox, sql: str) -> None:
    growth, result = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert not isinstance(result, Exception), result
    assert result.truncated and result.reason == "bytes"  # type: ignore[attr-defined]
    assert result.table.nbytes <= CAP  # type: ignore[attr-defined]
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"
    # the sandbox answers the next query, anyone's
    assert sandbox.run("SELECT count(*) AS n FROM t", LIMITS).table.to_pylist() == [{"n": ROWS}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT k, string_agg(s, ',' ORDER BY id)[1:30] AS s, list(id ORDER BY id)[1:3] AS l "
        "FROM t GROUP BY k ORDER BY k DESC",
        "SELECT id, s, [s, NULL] AS l, {'a': s, 'b': [id]} AS st, map([s], [[id]]) AS m, "
        "s AS s, repeat(s, 1) AS r, NULL::VARCHAR AS agnes_result_bytes FROM t WHERE id < 3000 ORDER BY id DESC",
        "SELECT id, (SELECT string_agg(s, ',') FROM t WHERE id < 3) AS few FROM t "
        "ORDER BY id LIMIT 5000",
        "SELECT k, max(id, 3) AS top, repeat(s, 2) AS twice FROM t WHERE id < 100 "
        "GROUP BY ALL ORDER BY ALL",
        "SELECT id, CASE WHEN id % 2 = 0 THEN union_value(s := s) ELSE union_value(n := id) "
        "END::UNION(s VARCHAR, n BIGINT) AS u, to_json(repeat(s, 1)) AS j, "
        "('POINT(' || id || ' 1)')::GEOMETRY AS g FROM t WHERE id < 50 ORDER BY id",
    ],
)
def test_metered_answers_are_duckdbs(sandbox: Sandbox, sql: str) -> None:
    assert result_meter.needs_meter(sql)
    with duckdb.connect() as plain:
        plain.execute(f"CREATE VIEW t AS {ROWS_VIEW}")
        relation = plain.sql(sql)
        # types Arrow mangles (a geometry) come as DuckDB prints them, as in every answer
        columns = list(zip(relation.columns, map(str, relation.types), strict=True))
        expected = plain.sql(faithful_sql(sql, columns)).to_arrow_table()
    result = sandbox.run(sql, LIMITS)
    assert not result.truncated
    # (a repeated name comes back made unique, as from any query: s, s_1)
    assert len(result.table.schema.names) == len(expected.schema.names)
    assert result.table.schema.names[-1] == expected.schema.names[-1]
    assert [c.to_pylist() for c in result.table.columns] == [
        c.to_pylist() for c in expected.columns
    ]


def test_a_metered_answer_is_still_cut_by_rows(sandbox: Sandbox) -> None:
    sql = "SELECT id, (SELECT string_agg(s, ',') FROM t WHERE id < 3) AS few FROM t ORDER BY id"
    result = sandbox.run(sql, Limits(rows=10, bytes=CAP, timeout_seconds=60))
    assert result.truncated and result.reason == "rows"
    assert [r["id"] for r in result.table.to_pylist()] == list(range(10))


@pytest.mark.parametrize(
    ("sql", "metered"),
    [
        ("SELECT k, max(id) AS m FROM t GROUP BY k", False),
        ("SELECT max(coalesce(id, 0)) FROM t", False),
        ("SELECT max(id, 5) FROM t", True),
        ("SELECT arg_max(s, coalesce(id, 1), 5) FROM t", True),
        ("SELECT string_agg(s) FROM t", True),
        ("SELECT repeat(s, 2) FROM t", True),
    ],
)
def test_only_queries_that_can_build_large_values_are_metered(sql: str, metered: bool) -> None:
    assert result_meter.needs_meter(sql) is metered


@pytest.fixture(scope="module")
def with_docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """t of :func:`rows_sandbox` and docs: one row with a 2 MB body."""
    folder = tmp_path_factory.mktemp("docs")
    with duckdb.connect() as con:
        con.execute(f"COPY ({ROWS_VIEW}) TO '{folder / 't.parquet'}'")
        con.execute(
            f"COPY (SELECT 1 AS id, repeat('x', 2000000) AS body) TO '{folder / 'docs.parquet'}'"
        )
    box = Sandbox(
        [local_table("t", folder / "t.parquet"), local_table("docs", folder / "docs.parquet")],
        memory_limit="2GB",
        threads=2,
    )
    yield box
    box.close()


@pytest.mark.parametrize(
    "sql",
    [
        # a table's value repeated by a plain join: nothing in the text builds a value
        "SELECT o.id, d.body FROM t o, docs d",
        "SELECT o.id, d.body FROM t o JOIN docs d ON true",
        # one table's value in many columns of one row
        "SELECT " + ", ".join(f"body AS c{i}" for i in range(600)) + " FROM docs",
    ],
)
def test_a_table_value_repeated_without_a_builder_is_cut_at_the_byte_cap(
    with_docs: Sandbox, sql: str
) -> None:
    """Metering was chosen by the query's text (aggregates, wrapped functions, encoders):
    a join repeating a 2 MB text from a table was converted 2,048 rows a batch, 4 GB, and
    failed (the Arrow appender's 2 GB) or took all memory. Each row is now measured."""
    assert not result_meter.needs_meter(sql)
    growth, result = peak_growth(lambda: with_docs.run(sql, LIMITS))
    assert not isinstance(result, Exception), result
    assert result.truncated and result.reason == "bytes"  # type: ignore[attr-defined]
    assert result.table.nbytes <= CAP  # type: ignore[attr-defined]
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"


def test_a_row_too_large_met_after_tables_were_registered_is_still_cut(with_docs: Sandbox) -> None:
    """DuckDB stops a guarded answer at a row too large for a batch with an error, which
    ends its transaction's use: the metered answer that follows runs in a new one, with
    the caller's tables registered again (a hybrid query's rows from the warehouse), and
    keeps the names DuckDB gives a repeated one (body, body_1)."""
    extra = pa.table({"id": [1], "body": ["y" * 2_000_000]})
    registered: list[int] = []

    def register(cursor: duckdb.DuckDBPyConnection) -> None:
        registered.append(1)
        cursor.register("extra", extra)

    sql = "SELECT o.id, e.body, e.body FROM t o, extra e"
    assert not result_meter.needs_meter(sql)
    result = with_docs.run(sql, LIMITS, prepare=register)
    assert len(registered) == 2  # once for the guarded answer, once for the metered one
    assert result.truncated and result.reason == "bytes"
    assert result.table.schema.names == ["id", "body", "body_1"]
    assert 0 < result.table.num_rows < 2_048 and result.table.nbytes <= CAP
    assert result.table.column("body")[0].as_py() == "y" * 2_000_000


def test_an_answer_not_metered_is_duckdbs(with_docs: Sandbox) -> None:
    sql = "SELECT o.id, o.s, left(d.body, 3) AS b FROM t o, docs d ORDER BY o.id DESC"
    result = with_docs.run(sql, LIMITS)
    assert result.truncated and result.reason == "rows" and result.table.num_rows == 100_000
    assert result.table.schema.names == ["id", "s", "b"]
    first = result.table.slice(0, 2).to_pylist()
    assert first == [
        {"id": ROWS - 1, "s": f"item {ROWS - 1}", "b": "xxx"},
        {"id": ROWS - 2, "s": f"item {ROWS - 2}", "b": "xxx"},
    ]
