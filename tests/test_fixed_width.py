"""An answer foreseen to hold only numbers, dates and booleans runs without the row
guard's bind; the foresight is checked against DuckDB's own answer schema, so a wrong one
costs time, never the byte cap."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlglot

from agnes_mcp.rails.fixed_width import fixed_width
from agnes_mcp.rails.sandbox import Sandbox
from tests.conftest import local_table
from tests.test_result_meter import CAP, LIMITS, with_docs  # noqa: F401 - a fixture
from tests.test_sandbox_memory import GiB, MiB, peak_growth

ORDERS = replace(
    local_table("orders"),
    columns=(
        ("order_id", "BIGINT"),
        ("status", "VARCHAR"),
        ("total", "DECIMAL(12,2)"),
        ("ordered_at", "TIMESTAMP WITH TIME ZONE"),
        ("paid", "BOOLEAN"),
        ("big", "UHUGEINT"),
    ),
)
ITEMS = replace(local_table("items"), columns=(("order_id", "BIGINT"), ("status", "INTEGER")))


@pytest.mark.parametrize(
    ("sql", "foreseen"),
    [
        ("SELECT count(*) AS n, max(total) AS top FROM orders WHERE order_id > 5", True),
        ("SELECT sum(total) / count(*), min(ordered_at), -max(order_id) FROM orders", True),
        ("SELECT paid, (order_id + 1) * 2, NULL, 1.5, true FROM orders", True),
        ("SELECT CAST(status AS INTEGER), TRY_CAST(status AS DATE) FROM orders", True),
        (
            "SELECT count(DISTINCT status), o.order_id FROM orders o JOIN items i USING (order_id)",
            True,
        ),
        # a text, or a name whose type is text in one of the tables read
        ("SELECT status FROM orders", False),
        ("SELECT max(status) FROM orders", False),
        ("SELECT i.status FROM orders o JOIN items i USING (order_id)", False),
        ("SELECT 'a' FROM orders", False),
        ("SELECT big FROM orders", False),  # an answer casts UHUGEINT to text
        ("SELECT CAST(order_id AS VARCHAR) FROM orders", False),
        ("SELECT CAST(total AS DECIMAL(40, 2)) FROM orders", False),
        # a top-n aggregate is a list; a star, a position, a name not in the catalog
        ("SELECT max(order_id, 3) FROM orders", False),
        ("SELECT * FROM orders", False),
        ("SELECT #1 FROM orders", False),
        ("SELECT nope FROM orders", False),
        # anything but a plain SELECT over tables
        ("WITH o AS (SELECT 'x' AS order_id) SELECT max(order_id) FROM o", False),
        ("SELECT max(order_id) FROM (SELECT 'x' AS order_id)", False),
        ("SELECT order_id FROM orders UNION ALL SELECT order_id FROM orders", False),
        ("SELECT count(*) FROM read_parquet('x.parquet')", False),
        ("SELECT 1", False),
        ("SELECT lower(status) FROM orders", False),
    ],
)
def test_an_answer_of_fixed_width_columns_is_foreseen(sql: str, foreseen: bool) -> None:
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    assert fixed_width(tree, [ORDERS, ITEMS]) is foreseen


def test_a_wrong_foresight_still_holds_the_byte_cap(with_docs: Sandbox) -> None:  # noqa: F811
    """A caller foreseeing fixed-width columns where DuckDB answers a text (a 2 MB one
    repeated by a join) gets the guarded answer: cut at the byte cap, memory bounded."""
    sql = "SELECT o.id, d.body FROM t o, docs d"
    growth, result = peak_growth(lambda: with_docs.run(sql, LIMITS, fixed_width=True))
    assert not isinstance(result, Exception), result
    assert result.truncated and result.reason == "bytes"  # type: ignore[attr-defined]
    assert result.table.nbytes <= CAP  # type: ignore[attr-defined]
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"


def test_a_right_foresight_answers_as_without(with_docs: Sandbox) -> None:  # noqa: F811
    sql = "SELECT o.id, o.id * 2 AS twice FROM t o WHERE o.id < 5 ORDER BY o.id"
    foreseen = with_docs.run(sql, LIMITS, fixed_width=True)
    plain = with_docs.run(sql, LIMITS)
    assert foreseen.table.equals(plain.table) and foreseen.table.num_rows == 5
