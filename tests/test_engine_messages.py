"""DuckDB's messages as the rails pass them on: its advice to change a setting (no query
may run SET or PRAGMA) is dropped, and nothing else — a value of the query's that happens
to read "set ..." stays whole."""

from __future__ import annotations

import duckdb
import pytest

from agnes_mcp.rails.engine_errors import read_duckdb_error, without_settings_advice


def _message(sql: str) -> str:
    with pytest.raises(duckdb.Error) as raised:
        duckdb.connect().execute(sql).fetchall()
    return str(raised.value)


def test_the_advice_to_change_a_setting_goes_and_the_rest_stays() -> None:
    said = read_duckdb_error(_message("SELECT 1 // 0")).message
    assert "Division by zero" in said and "Use TRY(...)" in said
    assert "SET" not in said and "error_on_division_by_zero" not in said
    deep = read_duckdb_error(_message("SELECT " + "+".join(["1"] * 1500))).message
    assert deep.startswith("Parser Error: Max expression depth") and "SET" not in deep


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'set me'::INT",
        "SELECT 'SET x TO y'::INT",
        "SELECT 'pragma foo'::INT",
        "SELECT CAST('data set one' AS DATE)",
        "SELECT error('please set up the widget')",
        "SELECT 1 UNION SELECT 1, 2",  # "Set operations can only apply to ..."
    ],
)
def test_a_value_of_the_query_that_reads_like_set_stays(sql: str) -> None:
    """The first filter dropped every sentence holding "set <word>": a conversion error of
    'set me' became "DuckDB gave no reason"."""
    raw = _message(sql).splitlines()[0]
    assert without_settings_advice(raw) == raw
    assert read_duckdb_error(_message(sql)).message == raw
