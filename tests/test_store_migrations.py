"""Migrations: from empty and from every older version to head; re-running is a no-op."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from agnes_mcp.errors import SystemStoreTooNew
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.migrate import available_migrations, current_version, head_version, migrate

EXPECTED_TABLES = {
    "schema_version",
    "users",
    "user_groups",
    "user_group_members",
    "resource_grants",
    "personal_access_tokens",
    "table_registry",
    "sync_state",
    "sync_history",
    "audit_log",
    "metric_definitions",
    "server_config",
    "marketplaces",
    "marketplace_plugins",
    "table_profiles",
    "web_sessions",
    "group_sync_status",
    "oauth_clients",
    "oauth_grants",
    "oauth_tokens",
}


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_migrations_are_numbered_contiguously() -> None:
    versions = [m.version for m in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert head_version() == versions[-1] >= 3


def test_fresh_database_migrates_to_head(tmp_path: Path) -> None:
    store = SystemStore.open(tmp_path / "system.duckdb")
    try:
        assert store.schema_version() == head_version()
        with store.cursor() as cur:
            assert tables(cur) == EXPECTED_TABLES
            groups = cur.execute(
                "SELECT id, name, is_system FROM user_groups ORDER BY id"
            ).fetchall()
        assert groups == [("admin", "Admin", True), ("everyone", "Everyone", True)]
    finally:
        store.close()


def test_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "system.duckdb"
    SystemStore.open(path).close()
    con = duckdb.connect(str(path))
    try:
        applied_before = con.execute("SELECT version, applied_at FROM schema_version").fetchall()
        assert migrate(con) == []
        assert (
            con.execute("SELECT version, applied_at FROM schema_version").fetchall()
            == applied_before
        )
        assert con.execute("SELECT count(*) FROM user_groups").fetchone() == (2,)
    finally:
        con.close()


@pytest.mark.parametrize("start", range(0, len(available_migrations())))
def test_every_older_version_migrates_to_head_keeping_data(tmp_path: Path, start: int) -> None:
    path = tmp_path / "system.duckdb"
    con = duckdb.connect(str(path))
    assert migrate(con, target=start) == list(range(1, start + 1))
    assert current_version(con) == start
    if start >= 1:  # data written at an older version survives the upgrade
        con.execute("INSERT INTO users (id, email) VALUES ('usr_old', 'old@example.com')")
    if start >= 2:  # a registration from before reader options existed
        con.execute(
            "INSERT INTO table_registry (id, name, source_type, source_table) "
            "VALUES ('old_orders', 'old_orders', 'files', 'orders.csv')"
        )
    con.close()

    store = SystemStore.open(path)
    try:
        assert store.schema_version() == head_version()
        with store.cursor() as cur:
            assert tables(cur) == EXPECTED_TABLES
            versions = [
                r[0]
                for r in cur.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
            ]
            assert versions == list(range(1, head_version() + 1))
            if start >= 1:
                assert cur.execute("SELECT email FROM users").fetchall() == [("old@example.com",)]
        if start >= 2:
            from agnes_mcp.store.table_registry import TableRegistryRepository

            old = TableRegistryRepository(store).get("old_orders")
            assert old.source_options == {} and old.source_table == "orders.csv"
    finally:
        store.close()


def test_a_failing_migration_leaves_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agnes_mcp.store import migrate as migrate_module

    broken = (
        *available_migrations()[:1],
        migrate_module.Migration(2, "broken", "CREATE TABLE x (a INT); SELEC 1"),
    )
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: broken)
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    with pytest.raises(duckdb.ParserException):
        migrate_module.migrate(con, target=2)
    assert current_version(con) == 1
    assert "x" not in tables(con)  # the half-applied migration was rolled back
    con.close()


def test_database_newer_than_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "system.duckdb"
    SystemStore.open(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version (version, name) VALUES (999, 'from_the_future')")
    con.close()
    with pytest.raises(SystemStoreTooNew) as caught:
        SystemStore.open(path)
    assert str(path) in caught.value.message and "999" in caught.value.message
    assert "Upgrade Agnes" in (caught.value.hint or "")
