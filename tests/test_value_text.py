"""Intervals and blobs read exactly as DuckDB's ``::VARCHAR`` writes them (a JSON answer
cannot hold Arrow's (months, days, nanoseconds) or raw bytes)."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa

from agnes_mcp.rails.value_text import blob_text, interval_text, nested_text, values_of


def test_intervals_read_as_duckdb_prints_them() -> None:
    rng = random.Random(7)
    con = duckdb.connect()
    cases = [(0, 0, 0), (14, 0, 0), (-13, 0, 0), (12, -1, 0), (0, 0, -500_000_000)]
    cases += [(0, 0, 360_000 * 10**9 * 1000), (-1, 2, -(10**9)), (0, 3, 40966472209000)]
    for _ in range(300):
        cases.append(
            (
                rng.choice([0, rng.randint(-400, 400)]),
                rng.choice([0, rng.randint(-40, 40)]),
                rng.choice([0, rng.randint(-(10**14), 10**14) * 1000, rng.randint(-9, 9) * 10**9]),
            )
        )
    for months, days, nanos in cases:
        micros = nanos // 1000
        shown = con.execute(
            "SELECT (to_months($1::INTEGER) + to_days($2::INTEGER) + to_microseconds($3::BIGINT))"
            "::VARCHAR",
            [months, days, micros],
        ).fetchall()[0]
        assert interval_text(months, days, micros * 1000) == shown[0], (months, days, micros)
    arrow = con.sql("SELECT INTERVAL '3 days 11:22:46.472209' AS v").to_arrow_table()
    assert values_of(arrow.column(0)) == ["3 days 11:22:46.472209"]


def test_blobs_read_as_duckdb_prints_them() -> None:
    con = duckdb.connect()
    every_byte = bytes(range(256))
    shown = con.execute("SELECT $1::BLOB::VARCHAR", [every_byte]).fetchall()[0]
    assert blob_text(every_byte) == shown[0]
    nested = pa.array([[b"\x00a", None], None], type=pa.list_(pa.binary()))
    assert values_of(nested) == [["\\x00a", None], None]


def test_lists_and_structs_read_as_duckdb_prints_them_in_text() -> None:
    """A CSV cell or a line of an MCP answer showed a list as Python would (['1 day'])."""
    con = duckdb.connect()
    for sql in (
        "SELECT ['a', 'b', NULL] AS v",
        "SELECT [INTERVAL 1 DAY] AS v",
        "SELECT [[1, 2], [3]] AS v",
        "SELECT {'k': 'v', 'n': 1} AS v",
        "SELECT [true, false] AS v",
    ):
        table = con.sql(sql).to_arrow_table()
        shown = con.sql(sql.replace("AS v", "::VARCHAR AS v")).fetchall()[0][0]
        assert nested_text(values_of(table.column(0))[0]) == shown, sql
