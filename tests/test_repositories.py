"""Repositories over a real system DB: users, groups, grants, registry, config, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import duckdb
import pytest

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID
from agnes_mcp.errors import (
    GrantExists,
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    MembershipNotFound,
    ResourceNotFound,
    SystemGroupImmutable,
    TableExists,
    TableNotRegistered,
    UserExists,
    UserNotFound,
)
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditEntry
from agnes_mcp.store.groups import MembershipSource
from agnes_sync.table_spec import QueryMode, SyncStrategy, TableSpec
from tests.conftest import add_user
from tests.marketplace_feed_harness import PluginSpec, publish


def test_user_add_normalises_email_and_joins_everyone(services: Services) -> None:
    user = services.users.add("  Ada@Example.COM ", "Ada")
    assert user.email == "ada@example.com" and user.active and user.name == "Ada"
    assert services.users.find("ADA@example.com").id == user.id
    assert services.users.find(user.id).email == user.email
    assert services.groups.group_ids_of(user.id) == {EVERYONE_GROUP_ID}
    members = services.groups.members(EVERYONE_GROUP_ID)
    assert [(m.email, m.source) for m in members] == [
        ("ada@example.com", MembershipSource.SYSTEM_SEED)
    ]


def test_user_errors(services: Services) -> None:
    services.users.add("dup@example.com")
    with pytest.raises(UserExists):
        services.users.add("DUP@example.com")
    with pytest.raises(InvalidRequest, match="not an e-mail"):
        services.users.add("not-an-address")
    with pytest.raises(UserNotFound):
        services.users.find("nobody@example.com")
    with pytest.raises(UserNotFound):
        services.users.get("usr_missing")
    assert services.users.count() == 1  # the failed adds left nothing behind


def test_deactivate_and_reactivate(services: Services) -> None:
    user = add_user(services)
    assert not services.users.set_active(user.id, False).active
    assert services.users.all(include_inactive=False) == []
    assert services.users.set_active(user.id, True).active


def test_group_lifecycle_and_member_counts(services: Services) -> None:
    group = services.groups.add("Finance", "Money people")
    with pytest.raises(GroupExists):
        services.groups.add("finance")
    with pytest.raises(InvalidRequest):
        services.groups.add("  ")
    a, b = add_user(services), add_user(services)
    services.groups.add_member(group.id, a.id)
    services.groups.add_member(group.id, a.id)  # idempotent
    services.groups.add_member(group.id, b.id, MembershipSource.GOOGLE_SYNC)
    assert services.groups.find("FINANCE").member_count == 2
    assert services.groups.find(group.id).name == "Finance"
    everyone = services.groups.get(EVERYONE_GROUP_ID)
    assert everyone.member_count == 2 and everyone.is_system


def test_each_writer_removes_only_its_own_membership(services: Services) -> None:
    group = services.groups.add("Sales")
    user = add_user(services)
    services.groups.add_member(group.id, user.id, MembershipSource.ADMIN)
    services.groups.add_member(group.id, user.id, MembershipSource.GOOGLE_SYNC)
    services.groups.remove_member(group.id, user.id, MembershipSource.GOOGLE_SYNC)
    assert group.id in services.groups.group_ids_of(user.id)  # the admin's row stays
    assert [m.source for m in services.groups.members(group.id)] == [MembershipSource.ADMIN]
    with pytest.raises(MembershipNotFound):
        services.groups.remove_member(group.id, user.id, MembershipSource.GOOGLE_SYNC)
    services.groups.remove_member(group.id, user.id, MembershipSource.ADMIN)
    assert services.groups.group_ids_of(user.id) == {EVERYONE_GROUP_ID}


def test_system_groups_are_protected(services: Services) -> None:
    user = add_user(services)
    with pytest.raises(SystemGroupImmutable):
        services.groups.delete(ADMIN_GROUP_ID)
    with pytest.raises(SystemGroupImmutable):
        services.groups.delete(EVERYONE_GROUP_ID)
    with pytest.raises(SystemGroupImmutable):
        services.groups.add_member(EVERYONE_GROUP_ID, user.id)
    with pytest.raises(SystemGroupImmutable):
        services.groups.remove_member(EVERYONE_GROUP_ID, user.id, MembershipSource.SYSTEM_SEED)
    with pytest.raises(GroupNotFound):
        services.groups.find("No Such Group")


def table(table_id: str, **extra: object) -> TableSpec:
    return TableSpec(id=table_id, source_type="files", source_table=f"{table_id}.csv", **extra)  # type: ignore[arg-type]


def test_deleting_a_group_removes_its_memberships_and_grants(services: Services) -> None:
    services.registry.add(table("orders"))
    group = services.groups.add("Temp")
    user = add_user(services, (group.id,))
    services.grants.add(group.id, ResourceType.TABLE, "orders")
    services.groups.delete(group.id)
    assert services.groups.group_ids_of(user.id) == {EVERYONE_GROUP_ID}
    assert services.grants.all() == []


def test_grants_check_existence_and_uniqueness(services: Services) -> None:
    services.registry.add(table("orders"))
    group = services.groups.add("Analysts")
    grant = services.grants.add(group.id, ResourceType.TABLE, "orders", granted_by="usr_x")
    assert (grant.group_name, grant.resource_type, grant.resource_id) == (
        "Analysts",
        ResourceType.TABLE,
        "orders",
    )
    with pytest.raises(GrantExists):
        services.grants.add(group.id, ResourceType.TABLE, "orders")
    with pytest.raises(ResourceNotFound):
        services.grants.add(group.id, ResourceType.TABLE, "no_such_table")
    # plugin ids are checked against the plugins of the marketplaces' last good syncs
    with pytest.raises(ResourceNotFound):
        services.grants.add(group.id, ResourceType.MARKETPLACE_PLUGIN, "tools/sql-helper")
    publish(services, "tools", [PluginSpec("sql-helper")])
    services.grants.add(group.id, ResourceType.MARKETPLACE_PLUGIN, "tools/sql-helper")
    assert services.grants.resources_of([group.id]) == {
        (ResourceType.TABLE, "orders"),
        (ResourceType.MARKETPLACE_PLUGIN, "tools/sql-helper"),
    }
    assert len(services.grants.all(resource_type=ResourceType.TABLE)) == 1
    services.grants.delete(grant.id)
    assert services.grants.resources_of([group.id]) == {
        (ResourceType.MARKETPLACE_PLUGIN, "tools/sql-helper")
    }


def test_table_registry_round_trip(services: Services) -> None:
    spec = table(
        "events",
        description="Events",
        query_mode=QueryMode.MATERIALIZED,
        source_query="SELECT 1",
        sync_strategy=SyncStrategy.INCREMENTAL,
        primary_key=["id"],
        incremental_column="updated_at",
        server_only=True,
    )
    saved = services.registry.add(spec, registered_by="usr_admin")
    assert saved.name == "events" and saved.primary_key == ["id"] and saved.server_only
    assert saved.registered_by == "usr_admin" and saved.registered_at.tzinfo is not None
    with pytest.raises(TableExists):
        services.registry.add(spec)
    updated = services.registry.update(spec.model_copy(update={"description": "Changed"}))
    assert updated.description == "Changed" and updated.registered_by == "usr_admin"
    services.registry.delete("events")
    with pytest.raises(TableNotRegistered):
        services.registry.get("events")


def test_table_ids_must_be_sql_identifiers() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        table("Bad-Name")


def test_server_config_values_are_json(services: Services) -> None:
    services.server_config.set("scan_caps.per_query_bytes", 1024, updated_by="usr_a")
    services.server_config.set("flags", {"a": [1, 2]})
    assert services.server_config.get("scan_caps.per_query_bytes") == 1024
    assert services.server_config.get("missing", "fallback") == "fallback"
    assert services.server_config.all() == {
        "flags": {"a": [1, 2]},
        "scan_caps.per_query_bytes": 1024,
    }
    services.server_config.delete("flags")
    assert "flags" not in services.server_config.all()


def test_audit_rows_round_trip(services: Services) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    services.audit_log.add_many(
        [
            AuditEntry(
                at=at, user_id="usr_a", action="query", result="ok", params={"sql": "SELECT 1"}
            ),
            AuditEntry(
                at=at, user_id="usr_b", action="grant.create", result="refused", duration_ms=1.5
            ),
        ]
    )
    rows = services.audit_log.recent()
    assert [r.action for r in rows] == ["grant.create", "query"]  # newest first
    assert rows[1].params == {"sql": "SELECT 1"} and rows[1].at == at
    assert [r.action for r in services.audit_log.recent(user_id="usr_a")] == ["query"]


def test_a_batch_of_audit_rows_keeps_every_field_in_order(services: Services) -> None:
    """One statement per batch: every field survives (None too, other time zones in UTC,
    params queryable as JSON), the batch's order is the ids' order."""
    cet = timezone(timedelta(hours=1))
    entries = [
        AuditEntry(
            at=datetime(2026, 1, 2, 3, 4, 5, i, tzinfo=cet),
            user_id=None if i % 2 else f"usr_{i}",
            action="query",
            result="ok" if i % 3 else "refused",
            resource=None if i % 5 else f"t{i}",
            params={"bytes_scanned": i, "sql": f"SELECT {i}", "when": date(2026, 1, 2)},
            duration_ms=None if i % 7 else i / 2,
            client_ip=None if i % 4 else "203.0.113.9",
            client="Claude Code" if i == 3 else None,
        )
        for i in range(300)
    ]
    assert services.audit_log.add_many(entries) == 300
    rows = list(reversed(services.audit_log.recent(limit=300)))
    assert [r.params["bytes_scanned"] for r in rows] == list(range(300))
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    for entry, row in zip(entries, rows, strict=True):
        assert row.at == entry.at and row.at.tzinfo is not None
        assert (row.user_id, row.resource, row.result, row.duration_ms, row.client_ip) == (
            entry.user_id,
            entry.resource,
            entry.result,
            entry.duration_ms,
            entry.client_ip,
        )
        assert row.client == entry.client and row.params["when"] == "2026-01-02"
    with services.store.cursor() as cur:
        scanned = cur.execute(
            "SELECT sum(CAST(json_extract(params, '$.bytes_scanned') AS BIGINT)) FROM audit_log"
        ).fetchone()
    assert scanned == (sum(range(300)),)


def test_a_bad_audit_batch_writes_nothing(services: Services) -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    good = AuditEntry(at=at, user_id="usr_a", action="query", result="ok")
    bad = AuditEntry(at=at, user_id="usr_a", action=None, result="ok")  # type: ignore[arg-type]
    with pytest.raises(duckdb.ConstraintException):
        services.audit_log.add_many([good, bad])
    assert services.audit_log.recent() == []
    assert services.audit_log.add_many([good]) == 1  # the writer is usable afterwards


def test_the_last_admin_stays(services: Services) -> None:
    from agnes_mcp.errors import LastAdmin

    only = add_user(services, (ADMIN_GROUP_ID,))
    with pytest.raises(LastAdmin):
        services.users.set_active(only.id, False)
    with pytest.raises(LastAdmin):
        services.groups.remove_member(ADMIN_GROUP_ID, only.id)
    second = add_user(services, (ADMIN_GROUP_ID,))
    services.groups.remove_member(ADMIN_GROUP_ID, only.id)  # fine now: another admin is left
    with pytest.raises(LastAdmin):
        services.users.set_active(second.id, False)
    plain = add_user(services)
    assert not services.users.set_active(plain.id, False).active  # non-admins are unaffected


def test_grants_need_a_live_group_and_not_admin(services: Services) -> None:
    services.registry.add(table("orders"))
    with pytest.raises(GroupNotFound):
        services.grants.add("grp_gone", ResourceType.TABLE, "orders")
    with pytest.raises(SystemGroupImmutable):
        services.grants.add(ADMIN_GROUP_ID, ResourceType.TABLE, "orders")
    with pytest.raises(UserNotFound):
        services.groups.add_member(services.groups.add("Real").id, "usr_gone")
