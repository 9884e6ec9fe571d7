"""Where a remote query's engine error points: at the SQL the caller wrote.

A remote query runs as the caller's SQL rewritten (each table id made its warehouse path,
``web_sessions`` -> ``warehouse.main.web_sessions``; keywords and spacing normalised), and
DuckDB's line and column were of that text: "column 67" in a query of 48 characters, a
line 1 for a token on line 2. The position now names the same token in the caller's SQL,
or nothing when the token is one the rewriting made.
"""

from __future__ import annotations

import pytest

from agnes_mcp.auth.principal import Principal
from agnes_mcp.rails.engine_errors import placed_in
from agnes_mcp.rails.refusals import QueryRefused
from tests.conftest import DemoServer


@pytest.fixture(scope="module")
def analyst(demo_server: DemoServer) -> Principal:
    return demo_server.live.services.tokens.authenticate(demo_server.analyst_token)


def _pointed(sql: str, line: int, column: int) -> str:
    return sql.split("\n")[line - 1][column - 1 :]


@pytest.mark.parametrize(
    ("sql", "token"),
    [
        # DuckDB points at the expression that failed: the comparison, the ORDER BY, the cast
        ("select * from web_sessions where event_date > 'abc'", "event_date > 'abc'"),
        ("select session_id\nfrom web_sessions\norder by 99", "order by 99"),
        ("select 1 from web_sessions w where cast(landing_page as int) > 1", "cast(landing"),
    ],
)
def test_a_remote_engine_error_points_at_the_callers_sql(
    demo_server: DemoServer, analyst: Principal, sql: str, token: str
) -> None:
    with pytest.raises(QueryRefused) as refused:
        demo_server.live.services.query.run(analyst, sql, mode="remote")
    error = refused.value
    assert error.code == "query_failed", error.message
    line, column = error.details["line"], error.details["column"]
    assert _pointed(sql, line, column).startswith(token), (line, column)
    assert error.message.endswith(f" (line {line}, column {column})")


def test_a_token_the_rewriting_made_is_not_pointed_at() -> None:
    ran = "SELECT * FROM warehouse.main.web_sessions WHERE x > 1"
    written = "select * from web_sessions where x > 1"
    assert placed_in(written, ran, 1, ran.index("warehouse") + 1) is None
    assert placed_in(written, ran, 1, ran.index("1") + 1) == (1, written.index("1") + 1)
    # the same token again is the same occurrence of it, and comments are not read
    twice = "select 1 -- 2 > 2\n, 2 > 2"
    assert placed_in(twice, "SELECT 1, 2 > 2", 1, 11) == (2, 3)
