"""The second wall alone: the sandbox must hold with the sqlglot policy switched off."""

from __future__ import annotations

from pathlib import Path

import duckdb
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
from agnes_mcp.rails.sandbox import Limits, Sandbox
from agnes_mcp.rails.tables import CatalogTable
from tests.conftest import DemoServer

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
    table = CatalogTable(
        id="granted",
        description="",
        query_mode="local",
        source="s",
        rows=None,
        size_bytes=None,
        extracted_at=None,
        files=(str(files["granted"]),),
    )
    return Sandbox([table], memory_limit="256MB", threads=1)


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
    assert [r["view_name"] for r in names.table.to_pylist()] == ["granted"]


def test_timeout_row_cap_and_byte_cap(sandbox: Sandbox) -> None:
    with pytest.raises(QueryTimeout):
        sandbox.run(
            "SELECT count(*) FROM range(100000000000)",
            Limits(rows=10, bytes=10**9, timeout_seconds=0.3),
        )
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
