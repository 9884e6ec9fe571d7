"""The function allow-list (agnes_mcp/rails/functions.csv): every function the installed
DuckDB has is reviewed, and each wall refuses what the review denied on its own.

A DuckDB upgrade that brings a function nobody has classified fails
``test_every_installed_function_is_reviewed`` until the generator is run and the new
lines are reviewed.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from agnes_mcp.rails import bare_functions, policy
from agnes_mcp.rails import function_catalog as fc
from agnes_mcp.rails.checked_parse import parse_checked
from agnes_mcp.rails.duckdb_check import cross_check, read_references
from agnes_mcp.rails.refusals import FunctionNotAllowed, QueryRefused, SqlParseError

ENTRIES = fc.read()
PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
ARITIES = ("()", "(a)", "(a, b)", "(a, b, c)")
REGENERATE = "uv run python -m agnes_mcp.rails.function_catalog"


def _sqlglot_reads(name: str) -> list[exp.Expr]:
    """The typed nodes sqlglot makes of ``name(...)`` at each arity it parses."""
    engine = Dialect.get_or_raise("duckdb")
    found: list[exp.Expr] = []
    for args in ARITIES:
        try:
            statement = engine.parse(f"SELECT {name}{args}")[0]
        except (ParseError, TokenError):  # this arity does not parse
            continue
        assert isinstance(statement, exp.Select)
        found.append(statement.expressions[0])
    return found


def _scalar_names(verdict: str) -> list[str]:
    names = {e.name for e in ENTRIES if e.kind in fc.SCALAR_KINDS and PLAIN.match(e.name)}
    return sorted(n for n in names if fc.scalar_verdict(n).allowed == (verdict == fc.ALLOWED))


DENIED = _scalar_names(fc.DENIED)
ALLOWED = _scalar_names(fc.ALLOWED)


# --- the review ------------------------------------------------------------------------------


def test_every_installed_function_is_reviewed() -> None:
    reviewed = {e.key: e for e in ENTRIES}
    missing = [f"{n} ({k})" for n, k, _ in fc.installed() if (n, k) not in reviewed]
    unclassified = [f"{e.name} ({e.kind})" for e in ENTRIES if e.verdict == fc.UNCLASSIFIED]
    assert not missing and not unclassified, (
        f"This DuckDB has functions nobody has reviewed: {missing + unclassified}. "
        f"Run `{REGENERATE}`, then give each 'unclassified' line in {fc.DATA_FILE.name} a "
        "verdict (allowed/denied) and a reason."
    )


def test_the_data_file_is_exactly_what_the_generator_writes() -> None:
    merged, added, dropped = fc.regenerate(ENTRIES, fc.installed())
    assert not added and not dropped, f"run `{REGENERATE}`"
    assert fc.render(merged) == fc.DATA_FILE.read_text(), f"run `{REGENERATE}`"
    assert fc.main(["--check"]) == 0


def test_every_verdict_has_a_known_reason() -> None:
    for entry in ENTRIES:
        reasons = fc.ALLOWED_AREAS if entry.verdict == fc.ALLOWED else fc.DENIED_REASONS
        assert entry.reason in reasons, entry
    assert len({e.key for e in ENTRIES}) == len(ENTRIES)


def test_regenerating_keeps_verdicts_and_marks_new_functions_unclassified(
    tmp_path: Path,
) -> None:
    path = tmp_path / "functions.csv"
    reviewed = [e for e in ENTRIES if e.name != "pg_get_viewdef"]
    gone = fc.Entry("no_longer_in_duckdb", "scalar", "main", fc.ALLOWED, "math")
    path.write_text(fc.render([*reviewed, gone]))
    assert fc.main(["--path", str(path), "--check"]) == 1  # stale: nothing written
    assert fc.read(path) == sorted([*reviewed, gone], key=lambda e: e.key)
    assert fc.main(["--path", str(path)]) == 0
    again = {e.key: e for e in fc.read(path)}
    assert again[("pg_get_viewdef", "macro")].verdict == fc.UNCLASSIFIED
    assert ("no_longer_in_duckdb", "scalar") not in again
    assert again[("sum", "aggregate")] == next(e for e in ENTRIES if e.key == ("sum", "aggregate"))
    assert again[("unnest", "syntax")].verdict == fc.ALLOWED  # parser names stay
    assert fc.main(["--path", str(path), "--check"]) == 1  # unclassified: still failing


def test_an_unclassified_function_is_refused_like_a_denied_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "functions.csv"
    lowered = [
        fc.Entry(e.name, e.kind, e.schema, fc.UNCLASSIFIED, "") if e.name == "lower" else e
        for e in ENTRIES
    ]
    path.write_text(fc.render(lowered))
    monkeypatch.setattr(fc, "DATA_FILE", path)
    fc.clear_caches()
    policy._denied_classes.cache_clear()
    try:
        with pytest.raises(FunctionNotAllowed, match="not been reviewed"):
            policy.parse("SELECT lower('A')")
        with pytest.raises(FunctionNotAllowed, match="not been reviewed"):
            cross_check("SELECT lower('A')", [])
    finally:
        monkeypatch.undo()
        fc.clear_caches()
        policy._denied_classes.cache_clear()


def test_only_the_row_generators_are_allowed_as_table_functions() -> None:
    allowed = {e.name for e in ENTRIES if e.kind in fc.TABLE_KINDS and e.verdict == fc.ALLOWED}
    assert allowed == {"range", "generate_series", "unnest"}


def test_the_attack_functions_are_denied_for_what_they_do() -> None:
    reasons = {
        name: fc.scalar_verdict(name).reason
        for name in (
            "pg_get_viewdef",
            "format_type",
            "pg_get_constraintdef",
            "get_block_size",
            "write_log",
            "sleep_ms",
            "pg_sleep",
            "version",
            "current_setting",
            "getvariable",
        )
    }
    assert reasons == {
        "pg_get_viewdef": "catalog",
        "format_type": "catalog",
        "pg_get_constraintdef": "catalog",
        "get_block_size": "catalog",
        "write_log": "side_effects",
        "sleep_ms": "side_effects",
        "pg_sleep": "side_effects",
        "version": "system_info",
        "current_setting": "settings",
        "getvariable": "settings",
    }


def test_every_pg_catalog_macro_is_denied_unless_reviewed_safe() -> None:
    pg = {e.name: e.verdict for e in ENTRIES if e.schema == "pg_catalog"}
    assert {n for n, v in pg.items() if v == fc.ALLOWED} == {"pg_typeof", "pg_size_pretty"}
    assert len(pg) > 40


def test_allowed_macros_read_no_table_and_call_only_allowed_functions() -> None:
    """A macro expands after both walls have read the query: its body is the review."""
    with duckdb.connect() as con:
        macros = con.execute(
            "SELECT lower(function_name), macro_definition FROM duckdb_functions() "
            "WHERE function_type = 'macro'"
        ).fetchall()
    checked = 0
    for name, body in macros:
        if not fc.scalar_verdict(name).allowed:
            continue
        found = read_references(f"SELECT {body}")
        assert not found.tables and not found.table_functions and not found.refusals, name
        assert all(fc.scalar_verdict(f).allowed for f in found.functions), (name, body)
        checked += 1
    assert checked > 50


# --- each wall alone -------------------------------------------------------------------------


@pytest.mark.parametrize("name", DENIED)
def test_the_duckdb_wall_refuses_every_denied_function(name: str) -> None:
    for sql in (f'SELECT "{name}"(1)', f'SELECT x."{name}"() FROM t', f'SELECT 1 WHERE "{name}"()'):
        with pytest.raises(FunctionNotAllowed) as caught:
            cross_check(sql, read_references(sql).tables)
        assert not isinstance(caught.value, fc.UnknownFunction)
        assert name in caught.value.message and caught.value.hint


@pytest.mark.parametrize("name", DENIED)
def test_the_sqlglot_wall_refuses_every_denied_function(name: str) -> None:
    refused = 0
    for spelling in (name, f'"{name}"'):  # sqlglot may read either as a typed function
        for args in ARITIES:
            try:
                policy.parse(f"SELECT {spelling}{args} FROM t")
            except FunctionNotAllowed as refusal:
                assert not isinstance(refusal, fc.UnknownFunction)
                refused += 1
            except SqlParseError:
                pass  # sqlglot cannot read this spelling (arity): refused as it is
            else:
                pytest.fail(f"{spelling}{args} passed the sqlglot wall")
    assert refused


def test_sql_value_functions_written_as_keywords() -> None:
    """DuckDB binds these bare words, when no column has the name, to its SQL value
    functions. sqlglot reads three as functions, which are refused; the other three are
    columns to both parsers (the sandbox refuses them as DuckDB binds them: the corpus)."""
    for word in ("current_user", "session_user", "current_catalog"):
        with pytest.raises(FunctionNotAllowed):
            policy.parse(f"SELECT {word}")
    with duckdb.connect() as con:
        for word, value in (
            ("user", "duckdb"),
            ("current_role", "duckdb"),
            ("current_schema", "main"),
        ):
            policy.parse(f"SELECT {word}")
            assert con.execute(f"SELECT {word}").fetchone() == (value,)


def test_the_bare_names_duckdb_calls_are_the_listed_value_functions() -> None:
    """Every function the review denies that DuckDB calls by its bare name (``SELECT
    user``) has a stand-in in the sandbox (rails/bare_functions.py): a DuckDB that calls
    one more bare name fails here until it is listed."""
    called = []
    with duckdb.connect() as con:
        for entry in ENTRIES:
            if entry.verdict == fc.ALLOWED or not PLAIN.match(entry.name):
                continue
            try:
                con.execute(f"SELECT {entry.name}").fetchall()
            except duckdb.Error:
                continue  # no column and no call: nothing to bind
            called.append(entry.name)
    assert sorted(set(called)) == sorted(bare_functions.denied())


@pytest.mark.parametrize("name", [n for n in ALLOWED if n not in fc.LIST_AGGREGATES])
def test_both_walls_let_every_allowed_function_through(name: str) -> None:
    cross_check(f'SELECT "{name}"(a) FROM t', ["t"])
    for spelling in (name, f'"{name}"'):
        for args in ARITIES:
            try:
                policy.parse(f"SELECT {spelling}{args} FROM t")
            except FunctionNotAllowed as refusal:
                pytest.fail(f"{spelling}{args}: {refusal.message}")
            except SqlParseError:
                pass  # sqlglot cannot read this arity


def test_sqlglot_reads_no_allowed_function_as_a_denied_one() -> None:
    """The sqlglot wall knows typed nodes by class: no allowed name may share one."""
    denied = policy._denied_classes()
    assert {denied[exp.CurrentVersion], denied[exp.CurrentUser]} == {"version", "current_user"}
    clashes = {
        (name, type(node).__name__)
        for name in ALLOWED
        for node in _sqlglot_reads(name)
        if type(node) in denied
    }
    assert not clashes


def test_sqlglot_renders_allowed_functions_with_allowed_names() -> None:
    """A remote DuckDB query runs as sqlglot renders it: no allowed function may come out
    as a denied one."""
    rendered = set()
    for name in ALLOWED:
        for node in _sqlglot_reads(name):
            sql = f"SELECT {node.sql(dialect='duckdb')}"
            try:
                functions = read_references(sql).functions
            except QueryRefused:
                continue  # not DuckDB SQL at this arity: it could not run either
            denied = [f for f in functions if fc.scalar_verdict(f).reason != "unknown"]
            assert all(fc.scalar_verdict(f).allowed for f in denied), (name, sql)
            rendered.add(name)
    assert len(rendered) > 400


ATTACKS = [
    "SELECT pg_get_viewdef(i) FROM range(10) t(i)",
    "SELECT pg_catalog.pg_get_viewdef(1)",
    "SELECT PG_GET_VIEWDEF(1)",
    "SELECT (1).pg_get_viewdef()",
    "SELECT list_transform([1], lambda x: format_type(x, NULL))",
    "SELECT * FROM t WHERE pg_get_constraintdef(1) IS NULL",
    "WITH c AS (SELECT get_block_size('memory') AS b) SELECT * FROM c",
    "SELECT coalesce(NULL, write_log('x'))",
    "SELECT * FROM t ORDER BY sleep_ms(1)",
    "SELECT CASE WHEN true THEN pg_sleep(1) END",
    "SELECT system.main.version()",
    "SELECT * FROM range(length(pg_get_viewdef(1)))",
    "SELECT x FROM t QUALIFY row_number() OVER (PARTITION BY pg_get_viewdef(1)) = 1",
    "SELECT * REPLACE (pg_get_viewdef(1) AS x) FROM t",
    "SELECT list_aggr([1], 'su' || 'm')",
    "SELECT x.list_aggr(lower('SUM')) FROM t",
    "SELECT list_aggr([1], 'combine_aggr')",
]


@pytest.mark.parametrize("sql", ATTACKS)
def test_each_wall_refuses_the_attacks_alone(sql: str) -> None:
    with pytest.raises(FunctionNotAllowed):
        policy.parse(sql)
    with pytest.raises(FunctionNotAllowed):
        cross_check(sql, read_references(sql).tables)


def test_the_duckdb_wall_refuses_exported_aggregate_states() -> None:
    with pytest.raises(FunctionNotAllowed, match="EXPORT_STATE"):
        cross_check("SELECT sum(x) EXPORT_STATE FROM t", ["t"])


ANALYST = [
    "SELECT date_trunc('month', d) AS m, count(*), count(DISTINCT x), sum(y), "
    "coalesce(max(s), '-') FROM t GROUP BY 1",
    "SELECT x, row_number() OVER (PARTITION BY s ORDER BY d), lag(y) OVER w, "
    "sum(y) OVER (ORDER BY d ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM t WINDOW w AS (ORDER BY d)",
    "SELECT CAST(x AS VARCHAR), TRY_CAST(s AS INT), x::DOUBLE, EXTRACT(year FROM d), "
    "CASE WHEN x > 1 THEN 'a' ELSE 'b' END, s LIKE 'a%', s ILIKE 'A%', x BETWEEN 1 AND 2 FROM t",
    "SELECT strftime(d, '%Y-%m'), strptime('2026-01', '%Y-%m'), d + INTERVAL 1 DAY, "
    "date_diff('day', d, today()), now(), current_date, epoch(d) FROM t",
    "SELECT lower(s), upper(s), trim(s), split_part(s, ',', 1), regexp_replace(s, 'a', 'b'), "
    "concat_ws('-', s, s), length(s), s || 'x', s.upper(), format('{}', x) FROM t",
    "SELECT list(x), list_aggr(list(x), 'sum'), [y * 2 FOR y IN [1, 2]], "
    "list_transform([1, 2], lambda v: v + 1), unnest([1, 2]), {'a': 1}.a, [1, 2][1] FROM t",
    "SELECT quantile_cont(x, 0.5), median(x), approx_count_distinct(s), stddev(x), "
    "arg_max(s, x), string_agg(s, ',' ORDER BY s), count(*) FILTER (WHERE x > 1) FROM t",
    "SELECT round(x, 2), abs(x), greatest(x, 1), nullif(x, 0), if(x > 1, 1, 0), "
    "ifnull(x, 0), hash(s), md5(s), typeof(x), random() < 1, uuid() IS NOT NULL FROM t",
    "SELECT json_extract_string(j, '$.a'), j->>'$.a', to_json(t), struct_pack(a := 1) FROM t",
    "SELECT * FROM t PIVOT (sum(x) FOR s IN ('a', 'b'))",
    "SELECT * FROM range(3) r, generate_series(1, 2) g, unnest([1]) u",
]


@pytest.mark.parametrize("sql", ANALYST)
def test_analyst_functions_pass_both_walls(sql: str) -> None:
    parsed = policy.parse(sql)
    cross_check(sql, parsed.table_names)


def test_an_unknown_function_is_named_with_a_suggestion() -> None:
    with pytest.raises(fc.UnknownFunction) as caught:
        parse_checked("SELECT cout(*) FROM orders", "duckdb")
    assert caught.value.code == "function_not_allowed"
    assert "cout()" in caught.value.message and "Did you mean 'count'?" in (caught.value.hint or "")
    with pytest.raises(fc.UnknownFunction):  # DuckDB's wall alone: sqlglot knows this one
        cross_check("SELECT format_date('%Y', d) FROM t", ["t"])


def test_a_denied_function_wins_over_an_unknown_one() -> None:
    """An unknown name may be another warehouse's SQL (tried in its dialect); a denied one
    anywhere in the query is refused outright, whatever order they come in."""
    for sql in (
        "SELECT no_such_fn(1), pg_get_viewdef(1)",
        "WITH u AS (SELECT no_such_fn(1)) SELECT pg_get_viewdef(1)",
    ):
        with pytest.raises(FunctionNotAllowed) as caught:
            policy.parse(sql)
        assert not isinstance(caught.value, fc.UnknownFunction)
        with pytest.raises(FunctionNotAllowed) as caught:
            cross_check(sql, [])
        assert not isinstance(caught.value, fc.UnknownFunction)


def test_bigquery_sql_keeps_its_deny_list_and_adds_duckdbs_denials() -> None:
    for sql in (
        "SELECT * FROM EXTERNAL_QUERY('p.us.conn', 'SELECT 1')",
        "SELECT SESSION_USER()",
        "SELECT pg_get_viewdef(1)",
        "SELECT `sleep_ms`(10)",
        # namespaces that reach other services: a signed URL to any Cloud Storage object
        # the connection reads, Vertex AI models, Cloud KMS keys
        "SELECT OBJ.GET_ACCESS_URL(OBJ.MAKE_REF('gs://bucket/private.csv', 'us.conn'), 'r')",
        "SELECT obj.fetch_metadata(ref) FROM `p.d.t`",
        "SELECT AI.GENERATE('Summarize', connection_id => 'us.conn')",
        "SELECT ai.generate_bool('x')",
        "SELECT `ai.generate_double`('x')",
        "SELECT ML.DISTANCE([1.0], [2.0])",
        "SELECT KEYS.KEYSET_CHAIN('gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k', b'')",
        # system variables (the project, dataset and location the connection runs in) and
        # query parameters no value is given for
        "SELECT @@project_id",
        "SELECT x FROM `p.d.t` WHERE d = @@dataset_id",
        "SELECT @@location, 1",
        "SELECT x FROM `p.d.t` WHERE y = @wanted",
    ):
        with pytest.raises(FunctionNotAllowed):
            policy.parse(sql, policy.BIGQUERY)
    policy.parse(
        "SELECT FORMAT_DATE('%Y-%m', d), SAFE_DIVIDE(a, b), APPROX_COUNT_DISTINCT(v), "
        "TO_JSON_STRING(t), REGEXP_CONTAINS(s, r'x'), DATE_SUB(CURRENT_DATE(), INTERVAL 7 DAY) "
        "FROM `p.d.t` AS t",
        policy.BIGQUERY,
    )


def test_every_duckdb_function_name_parses_as_a_call_but_the_keyword_named() -> None:
    """The rails parse with sqlglot: a DuckDB function whose name it reads as a keyword
    cannot be called by that name, and its refusal says which name to write instead."""
    names = {
        str(r[0])
        for r in duckdb.sql(
            "SELECT DISTINCT function_name FROM duckdb_functions() "
            "WHERE function_type IN ('scalar', 'aggregate', 'macro')"
        ).fetchall()
        if re.fullmatch(r"[a-z_][a-z0-9_]*", str(r[0]))
    }
    engine = Dialect.get_or_raise("duckdb")

    def parses(name: str) -> bool:
        for args in ("", "1", "1, 2", "[1], 2", "1, 2, 3"):
            try:
                engine.parse(f"SELECT {name}({args})")
            except (ParseError, TokenError):
                continue
            return True
        return False

    assert {n for n in names if not parses(n)} == set(policy.KEYWORD_NAMED)
    for name, instead in policy.KEYWORD_NAMED.items():
        with pytest.raises(SqlParseError) as refused:
            policy.parse(f"SELECT {name.upper()} ([1, 2], lambda x: x + 1) AS v")
        assert refused.value.hint is not None and f"Write {instead}(...)" in refused.value.hint
        assert policy.parse(f"SELECT {instead}([1, 2], lambda x: x + 1) AS v") is not None
