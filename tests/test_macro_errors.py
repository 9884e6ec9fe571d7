"""A call with an argument of the wrong type, to a function DuckDB expands as a macro (its
own macros, and the value guards' wrappers): the refusal names the call the query wrote
and the types its function takes, never a function of the macro's body."""

from __future__ import annotations

import duckdb
import pytest

from agnes_mcp.rails import macro_errors, value_guards
from agnes_mcp.rails.refusals import QueryFailed
from agnes_mcp.rails.sandbox import Limits, Sandbox
from tests.conftest import local_table

LIMITS = Limits(rows=100, bytes=10_000_000, timeout_seconds=5)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    path = tmp_path_factory.mktemp("macros") / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id, 'a' AS s FROM range(3)) TO '{path}' (FORMAT parquet)")
    return Sandbox([local_table("t", path)], memory_limit="256MB", threads=1)


def _refusal(sandbox: Sandbox, sql: str) -> QueryFailed:
    with pytest.raises(QueryFailed) as raised:
        sandbox.run(sql, LIMITS)
    return raised.value


# The macro's body calls a function or an operator the query does not write.
_INNER_WORDS = ("*(", "+(", "/(", "len(", "strlen(", "contains(", "list_concat(", "list_aggr(")


@pytest.mark.parametrize(
    ("sql", "called", "column"),
    [
        ("SELECT repeat('x', 'y')", "repeat", 8),  # a value guard's wrapper
        ("SELECT repeat(1, 2)", "repeat", 8),
        ("SELECT id, replace(id, 2, 3) FROM t", "replace", 12),
        ("SELECT regexp_replace('a', 'b', 'c', 5)", "regexp_replace", 8),
        ("SELECT damerau_levenshtein(1, 2)", "damerau_levenshtein", 8),
        ("SELECT\n  list_prepend(1, 2)", "list_prepend", 3),  # DuckDB's own macros
        ("SELECT date_add('x', 1)", "date_add", 8),
        ("SELECT fdiv('a', 1)", "fdiv", 8),
        ("SELECT list_sum(id) FROM t", "list_sum", 8),
    ],
)
def test_a_bad_argument_to_a_macro_names_the_call_written(
    sandbox: Sandbox, sql: str, called: str, column: int
) -> None:
    refusal = _refusal(sandbox, sql)
    assert refusal.message.startswith(f"Binder Error: {called}() cannot take the arguments")
    assert not any(word in refusal.message for word in _INNER_WORDS), refusal.message
    assert value_guards.MARKER not in refusal.message + str(refusal.hint)
    assert refusal.details["column"] == column
    assert refusal.hint is not None and refusal.hint.startswith(f"{called} is called as {called}(")
    assert called in macro_errors.macro_names()


def test_the_hint_gives_the_builtins_types() -> None:
    said, typed = macro_errors.signatures("repeat")
    assert typed and "repeat(VARCHAR, BIGINT)" in said


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT len(1), repeat('x', 2)",  # the query's own call failed, not the macro's
        "SELECT repeat('x', 2) * 'a'",  # the query's own operator, with a position
        "SELECT 'a' * 2, repeat('x', 2)",
    ],
)
def test_an_error_of_the_querys_own_is_duckdbs(sandbox: Sandbox, sql: str) -> None:
    assert "cannot take the arguments" not in _refusal(sandbox, sql).message


def test_two_macros_are_both_named(sandbox: Sandbox) -> None:
    message = _refusal(sandbox, "SELECT list_sum(1), repeat('a', 'b')").message
    assert "One of list_sum(), repeat() cannot take the arguments" in message
