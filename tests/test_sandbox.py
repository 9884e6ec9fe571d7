"""The second wall alone: the sandbox must hold with the sqlglot policy switched off."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from agnes_mcp.auth.principal import Principal
from agnes_mcp.rails import policy
from agnes_mcp.rails.refusals import (
    MultipleStatements,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    ReadOnly,
)
from agnes_mcp.rails.sandbox import IDLE_CURSORS, Limits, Sandbox
from tests.conftest import DemoServer, local_table

LIMITS = Limits(rows=100, bytes=10_000_000, timeout_seconds=2)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    granted = tmp_path / "granted.parquet"
    secret = tmp_path / "secret.parquet"
    duckdb.sql(f"COPY (SELECT range AS id FROM range(1000)) TO '{granted}' (FORMAT parquet)")
    duckdb.sql(f"COPY (SELECT 'top secret' AS s) TO '{secret}' (FORMAT parquet)")
    (tmp_path / "secret.csv").write_text("s\nhidden\n")
    return {"granted": granted, "secret": secret, "csv": tmp_path / "secret.csv", "dir": tmp_path}


@pytest.fixture
def sandbox(files: dict[str, Path]) -> Sandbox:
    return Sandbox([local_table("granted", files["granted"])], memory_limit="256MB", threads=1)


def test_granted_view_reads(sandbox: Sandbox) -> None:
    assert sandbox.run("SELECT count(*) FROM granted", LIMITS).table.to_pylist() == [
        {"count_star()": 1000}
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{secret}')",
        "SELECT * FROM '{secret}'",
        "SELECT * FROM read_csv('{csv}')",
        "SELECT * FROM read_text('{csv}')",
        "SELECT * FROM glob('{dir}/*')",
        "SELECT * FROM read_parquet('{dir}/*.parquet')",
        "SELECT * FROM parquet_metadata('{secret}')",
    ],
)
def test_no_file_outside_the_grant_is_readable(
    sandbox: Sandbox, files: dict[str, Path], sql: str
) -> None:
    with pytest.raises(QueryFailed, match="Permission Error"):
        sandbox.run(sql.format(secret=files["secret"], csv=files["csv"], dir=files["dir"]), LIMITS)


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO '{dir}/out.csv'",
        "ATTACH '{dir}/x.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET allowed_paths = ['/']",
        "PRAGMA database_list",
        "CREATE TABLE t AS SELECT 1",
        "CREATE OR REPLACE VIEW granted AS SELECT 'forged' AS id",
        "DROP VIEW granted",
        "CALL pragma_version()",
        "EXPORT DATABASE '{dir}/dump'",
        "CHECKPOINT",
    ],
)
def test_nothing_but_a_select_runs(sandbox: Sandbox, files: dict[str, Path], sql: str) -> None:
    with pytest.raises((ReadOnly, QueryFailed)):
        sandbox.run(sql.format(dir=files["dir"]), LIMITS)
    assert not (files["dir"] / "out.csv").exists()
    assert sandbox.run("SELECT count(*) AS n FROM granted", LIMITS).table.to_pylist() == [
        {"n": 1000}
    ]


def test_one_statement_only_and_nothing_persists(sandbox: Sandbox) -> None:
    with pytest.raises(MultipleStatements):
        sandbox.run("SELECT 1; SELECT 2", LIMITS)
    # a SELECT with side effects (a sequence) cannot leave anything behind: it is rolled back
    sandbox.run("SELECT count(*) FROM granted", LIMITS)
    names = sandbox.run("SELECT view_name FROM duckdb_views() WHERE NOT internal", LIMITS)
    views = [r["view_name"] for r in names.table.to_pylist()]
    # the table's view, and (on a reused cursor) its dataset registered under a hidden name
    assert [v for v in views if not v.startswith("__agnes_source_")] == ["granted"]


@pytest.mark.parametrize(
    "ending", ["; -- done", " -- done\n;", "; /* done */ ;", ";;", "\n-- last line"]
)
def test_a_statement_ended_by_semicolons_and_comments_runs_and_counts(
    sandbox: Sandbox, ending: str
) -> None:
    """The sandbox wraps the statement in parentheses (the row cap, the count): what ends
    it must not end up inside them."""
    sql = "SELECT id FROM granted" + ending
    cut = sandbox.run(sql, Limits(rows=10, bytes=10**9, timeout_seconds=5))
    assert cut.table.num_rows == 10 and cut.truncated
    assert sandbox.count(sql, LIMITS) == 1000


def test_timeout_row_cap_and_byte_cap(sandbox: Sandbox) -> None:
    with pytest.raises(QueryTimeout) as stopped:
        sandbox.run(
            "SELECT count(*) FROM range(100000000000)",
            Limits(rows=10, bytes=10**9, timeout_seconds=0.3),
        )
    # the limit is named with where it is set, not only its value
    assert "0.3 s" in stopped.value.message and "query_timeout_seconds" in stopped.value.message
    assert stopped.value.details == {"limit_seconds": 0.3}
    rows = sandbox.run("SELECT * FROM granted", Limits(rows=7, bytes=10**9, timeout_seconds=2))
    assert rows.table.num_rows == 7 and rows.truncated and rows.reason == "rows"
    wide = sandbox.run(
        "SELECT repeat('x', 1000) AS s FROM granted",
        Limits(rows=1000, bytes=50_000, timeout_seconds=2),
    )
    assert wide.truncated and wide.reason == "bytes" and wide.table.nbytes <= 50_000


def test_settings_are_locked(sandbox: Sandbox) -> None:
    settings = dict(
        (r["name"], r["value"])
        for r in sandbox.run(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'autoload_known_extensions')",
            LIMITS,
        ).table.to_pylist()
    )
    assert settings == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoload_known_extensions": "false",
    }


def test_service_with_the_parser_switched_off(
    demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Policy and cross-check disabled: ungranted tables, files and writes still fail."""
    services = demo_server.live.services
    analyst: Principal = services.tokens.authenticate(demo_server.analyst_token)

    def permissive(sql: str, dialect: str = policy.DUCKDB) -> policy.ParsedQuery:
        return policy.ParsedQuery(sql=sql, dialect=dialect, tree=duckdb_free_tree(), refs=[])

    monkeypatch.setattr(policy, "parse", permissive)
    monkeypatch.setattr("agnes_mcp.rails.checked_parse.cross_check", lambda sql, names: None)
    extract = services.settings.extracts_dir / "files" / "data" / "support_tickets.parquet"
    attempts = [
        "SELECT * FROM support_tickets",
        f"SELECT * FROM read_parquet('{extract}')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/agnes-pwned.csv'",
        "ATTACH '/tmp/agnes-pwned.duckdb' AS p",
        "SELECT * FROM web_sessions",
        "SET enable_external_access = true",
    ]
    for sql in attempts:
        with pytest.raises(QueryRefused):
            services.query.run(analyst, sql, mode="local")
    assert not Path("/tmp/agnes-pwned.csv").exists()
    assert (
        services.query.run(analyst, "SELECT count(*) AS n FROM orders", mode="local").table.num_rows
        == 1
    )


def duckdb_free_tree():  # the permissive parser's stand-in tree
    import sqlglot

    return sqlglot.parse_one("SELECT 1")


def _catalog_text(sandbox: Sandbox) -> dict[str, str]:
    """Everything the sandbox's own catalog says, by source: every ``duckdb_*`` and
    ``pragma_*`` table function (with no arguments, and some with the view's name),
    ``information_schema``, and ``pg_get_viewdef`` of each view — run inside the sandbox,
    policy or not."""
    said: dict[str, str] = {}
    names = (
        sandbox.run(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table' "
            "AND (function_name LIKE 'duckdb\\_%' ESCAPE '\\' OR function_name LIKE 'pragma\\_%' "
            "ESCAPE '\\')",
            Limits(rows=1000, bytes=10**8, timeout_seconds=10),
        )
        .table.column(0)
        .to_pylist()
    )
    queries = {name: f"SELECT * FROM {name}()" for name in names}
    for view in ("tables", "columns", "views", "schemata", "routines", "parameters"):
        queries[f"information_schema.{view}"] = f"SELECT * FROM information_schema.{view}"
    queries["pg_get_viewdef"] = "SELECT pg_get_viewdef(view_oid) FROM duckdb_views()"
    queries["all settings"] = "SELECT * FROM duckdb_settings(include_all := true)"
    queries["pragma_table_info"] = "SELECT * FROM pragma_table_info('granted')"
    queries["pragma_show"] = "SELECT * FROM pragma_show('granted')"
    queries["settings"] = (
        "SELECT current_setting('allowed_paths'), current_setting('file_search_path')"
    )
    for source, sql in queries.items():
        try:
            result = sandbox.run(sql, Limits(rows=100_000, bytes=10**9, timeout_seconds=10))
        except QueryRefused:
            continue  # a function that needs a context the sandbox lacks says nothing
        said[source] = str(result.table.to_pylist())
    return said


def test_no_catalog_function_reveals_a_server_path(
    sandbox: Sandbox, files: dict[str, Path]
) -> None:
    """The views read registered datasets, and DuckDB may open no file: no view text,
    setting or catalog row holds the data dir's absolute path (the policy is not here)."""
    said = _catalog_text(sandbox)
    for must in (
        "duckdb_views",
        "duckdb_settings",
        "duckdb_functions",
        "duckdb_tables",
        "duckdb_columns",
        "duckdb_databases",
        "information_schema.views",
        "pg_get_viewdef",
        "settings",
        "all settings",
    ):
        assert must in said, f"{must} was not read"
    assert "granted" in said["duckdb_views"] and "CREATE VIEW" in said["pg_get_viewdef"]
    data_dir = str(files["dir"])
    leaks = {source: text for source, text in said.items() if data_dir in text}
    assert leaks == {}
    # ... and the table still reads, with its types (parquet files opened by trusted code)
    assert sandbox.run(
        "SELECT typeof(id) AS t, count(*) AS n FROM granted GROUP BY 1", LIMITS
    ).table.to_pylist() == [{"t": "BIGINT", "n": 1000}]


def test_duckdb_itself_may_open_no_file(sandbox: Sandbox, files: dict[str, Path]) -> None:
    """Even the granted table's own file: DuckDB's allowed_paths holds nothing."""
    with pytest.raises(QueryFailed, match="Permission Error"):
        sandbox.run(f"SELECT * FROM read_parquet('{files['granted']}')", LIMITS)


def test_parquet_types_read_as_duckdb_reads_them(tmp_path: Path) -> None:
    """UUID, JSON and INTERVAL columns (which Arrow reads as bytes and text) keep their
    types; files of one table with different columns are read by name."""
    typed = tmp_path / "typed.parquet"
    duckdb.sql(
        "COPY (SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID AS u, '{\"a\": 1}'::JSON AS j, "
        "INTERVAL '3 months 5 days 01:02:03.5' AS i, 'x'::ENUM('x', 'y') AS e, [1, 2] AS l, "
        f"{{'k': 'v'}} AS s, 12.5::DECIMAL(9, 2) AS d) TO '{typed}'"
    )
    first, second = tmp_path / "p1.parquet", tmp_path / "p2.parquet"
    duckdb.sql(f"COPY (SELECT 1::INTEGER AS a, 'x' AS b) TO '{first}'")
    duckdb.sql(f"COPY (SELECT 2::BIGINT AS a, 'y' AS b, true AS c) TO '{second}'")
    tables = [local_table("typed", typed), local_table("parts", first, second)]
    box = Sandbox(tables, memory_limit="256MB", threads=1)
    try:
        types = "SELECT typeof(COLUMNS(*)) FROM {}"
        native = duckdb.sql(types.format(f"'{typed}'")).fetchall()
        assert [
            tuple(r.values()) for r in box.run(types.format("typed"), LIMITS).table.to_pylist()
        ] == native
        values = "SELECT * FROM {}"
        assert (
            box.run(values.format("typed"), LIMITS).table.to_pylist()
            == duckdb.sql(values.format(f"'{typed}'")).to_arrow_table().to_pylist()
        )
        both = (
            f"SELECT * FROM read_parquet(['{first}', '{second}'], union_by_name = true) ORDER BY a"
        )
        assert (
            box.run("SELECT * FROM parts ORDER BY a", LIMITS).table.to_pylist()
            == duckdb.sql(both).to_arrow_table().to_pylist()
        )
    finally:
        box.close()


def test_a_table_whose_files_are_gone_is_a_typed_refusal(tmp_path: Path) -> None:
    from agnes_mcp.rails.arrow_sources import TableUnavailable

    gone = local_table("gone", tmp_path / "no.parquet")
    sandbox = Sandbox([gone], memory_limit="256MB", threads=1)  # the other tables still serve
    try:
        with pytest.raises(TableUnavailable) as refused:
            sandbox.refuse_unreadable([gone])
    finally:
        sandbox.close()
    assert refused.value.status == 503 and str(tmp_path) not in refused.value.message
    assert "'gone'" in refused.value.message


def test_data_one_query_brings_is_never_seen_by_the_next(sandbox: Sandbox) -> None:
    """Cursors are reused, but not one that was given data of its own (a caller's
    snapshot): the next query, whoever sends it, cannot read it."""
    mine = pa.table({"secret": ["only mine"]})
    own = sandbox.run("SELECT * FROM mine", LIMITS, prepare=lambda c: c.register("mine", mine))
    assert own.table.to_pylist() == [{"secret": "only mine"}]
    for _ in range(IDLE_CURSORS + 2):  # every cursor the pool may hand out
        with pytest.raises(QueryFailed, match="mine"):
            sandbox.run("SELECT * FROM mine", LIMITS)


def test_one_sandbox_serves_many_threads_at_once(sandbox: Sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def count(i: int) -> int:
        result = sandbox.run(f"SELECT count(*) AS n FROM granted WHERE id >= {i}", LIMITS)
        return int(result.table.to_pylist()[0]["n"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(count, range(200))) == [1000 - i for i in range(200)]
    with pytest.raises(QueryTimeout):  # a stopped query's cursor is not handed out again
        sandbox.run(
            "SELECT count(*) FROM range(100000000000) a, range(10) b",
            Limits(rows=10, bytes=10**9, timeout_seconds=0.2),
        )
    assert count(0) == 1000
