"""The RBAC matrix: users x groups x grants x token scopes."""

from __future__ import annotations

import itertools

import pytest

from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID
from agnes_mcp.errors import AdminRequired, PermissionDenied, ResourceNotGranted
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_sync.table_spec import TableSpec
from tests.conftest import add_user
from tests.marketplace_feed_harness import PluginSpec, publish

TABLES = ["orders", "customers", "payroll", "web_sessions"]


@pytest.fixture
def world(services: Services) -> dict[str, object]:
    for t in TABLES:
        services.registry.add(TableSpec(id=t, source_type="files", source_table=f"{t}.csv"))
    analysts = services.groups.add("Analysts")
    finance = services.groups.add("Finance")
    services.grants.add(analysts.id, ResourceType.TABLE, "orders")
    services.grants.add(analysts.id, ResourceType.TABLE, "web_sessions")
    services.grants.add(finance.id, ResourceType.TABLE, "payroll")
    services.grants.add(EVERYONE_GROUP_ID, ResourceType.TABLE, "customers")
    users = {
        "admin": add_user(services, (ADMIN_GROUP_ID,)),
        "analyst": add_user(services, (analysts.id,)),
        "finance": add_user(services, (finance.id,)),
        "both": add_user(services, (analysts.id, finance.id)),
        "nobody": add_user(services),
    }
    return {"users": users, "analysts": analysts}


EXPECTED = {
    "admin": {"orders", "customers", "payroll", "web_sessions"},
    "analyst": {"orders", "customers", "web_sessions"},
    "finance": {"payroll", "customers"},
    "both": {"orders", "customers", "payroll", "web_sessions"},
    "nobody": {"customers"},
}


@pytest.mark.parametrize(("who", "table"), list(itertools.product(EXPECTED, TABLES)))
def test_table_access_matrix(services: Services, world: dict, who: str, table: str) -> None:
    user = world["users"][who]
    _, raw = services.tokens.create(user.id, "t")
    principal = services.tokens.authenticate(raw)
    allowed = table in EXPECTED[who]
    assert services.access.can_access(principal, ResourceType.TABLE, table) is allowed
    if allowed:
        services.access.require_resource_access(principal, ResourceType.TABLE, table)
    else:
        with pytest.raises(ResourceNotGranted) as caught:
            services.access.require_resource_access(principal, ResourceType.TABLE, table)
        assert caught.value.status == 403 and table in caught.value.message


@pytest.mark.parametrize("who", list(EXPECTED))
def test_granted_listing_matches_the_matrix(services: Services, world: dict, who: str) -> None:
    _, raw = services.tokens.create(world["users"][who].id, "t")
    granted = services.access.granted(services.tokens.authenticate(raw), ResourceType.TABLE)
    if who == "admin":
        assert granted is None  # everything
    else:
        assert granted == EXPECTED[who]


def test_grants_are_per_resource_type(services: Services, world: dict) -> None:
    publish(services, "shop", [PluginSpec("orders")])
    services.grants.add(world["analysts"].id, ResourceType.MARKETPLACE_PLUGIN, "shop/orders")
    _, raw = services.tokens.create(world["users"]["analyst"].id, "t")
    principal = services.tokens.authenticate(raw)
    assert services.access.can_access(principal, ResourceType.MARKETPLACE_PLUGIN, "shop/orders")
    # The table grant 'orders' is no plugin grant, and the plugin grant is no table grant.
    assert services.access.can_access(principal, ResourceType.TABLE, "orders")
    assert not services.access.can_access(principal, ResourceType.MARKETPLACE_PLUGIN, "orders")
    assert not services.access.can_access(principal, ResourceType.TABLE, "shop/orders")
    _, other = services.tokens.create(world["users"]["nobody"].id, "t")
    nobody = services.tokens.authenticate(other)
    assert not services.access.can_access(nobody, ResourceType.MARKETPLACE_PLUGIN, "shop/orders")


def test_the_admin_group_is_granted_plugins_but_not_tables(services: Services) -> None:
    from agnes_mcp.errors import SystemGroupImmutable

    publish(services, "ops", [PluginSpec("runbook")])
    admin = add_user(services, (ADMIN_GROUP_ID,))
    _, raw = services.tokens.create(admin.id, "t", [TokenScope.DATA.value])
    # No shortcut for admins: the feed is what their groups were granted.
    assert services.marketplaces.feed_for(services.tokens.authenticate(raw)).entries == ()
    services.grants.add(ADMIN_GROUP_ID, ResourceType.MARKETPLACE_PLUGIN, "ops/runbook")
    feed = services.marketplaces.feed_for(services.tokens.authenticate(raw))
    assert [e.plugin.grant_id for e in feed.entries] == ["ops/runbook"]
    with pytest.raises(SystemGroupImmutable, match="every table already"):
        services.grants.add(ADMIN_GROUP_ID, ResourceType.TABLE, "orders")


def test_revoking_a_grant_is_seen_immediately(services: Services, world: dict) -> None:
    _, raw = services.tokens.create(world["users"]["analyst"].id, "t")
    principal = services.tokens.authenticate(raw)
    assert services.access.can_access(principal, ResourceType.TABLE, "orders")
    grant = next(g for g in services.grants.all() if g.resource_id == "orders")
    services.grants.delete(grant.id)
    assert not services.access.can_access(
        services.tokens.authenticate(raw), ResourceType.TABLE, "orders"
    )


@pytest.mark.parametrize(
    ("who", "scopes", "may_admin"),
    [
        ("admin", ["data", "admin"], True),
        ("admin", ["data"], False),  # admin user, token without the admin scope
        ("analyst", ["data"], False),
        ("admin", ["admin"], True),
    ],
)
def test_require_admin_needs_group_and_scope(
    services: Services, world: dict, who: str, scopes: list[str], may_admin: bool
) -> None:
    _, raw = services.tokens.create(world["users"][who].id, "t", scopes)
    principal = services.tokens.authenticate(raw)
    if may_admin:
        services.access.require_admin(principal)
    else:
        with pytest.raises(AdminRequired):
            services.access.require_admin(principal)


def test_a_token_without_the_data_scope_cannot_use_data(services: Services, world: dict) -> None:
    _, raw = services.tokens.create(
        world["users"]["admin"].id, "admin-only", [TokenScope.ADMIN.value]
    )
    principal = services.tokens.authenticate(raw)
    assert not services.access.can_access(principal, ResourceType.TABLE, "orders")
    with pytest.raises(PermissionDenied, match="data"):
        services.access.require_resource_access(principal, ResourceType.TABLE, "orders")
