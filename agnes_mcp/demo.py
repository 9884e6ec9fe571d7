"""Wiring the demo company into a server: tables, users, a group with grants, tokens.

Idempotent: a second run on the same data dir keeps what is there and reuses the
tokens in ``state/demo-tokens.json`` while they still work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agnes_mcp.auth.bootstrap import write_secret_file
from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.errors import AuthenticationError, TableNotRegistered
from agnes_mcp.resources import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.table_registry import QueryMode, TableSpec
from agnes_mcp.store.users import ADMIN_GROUP_ID, User
from agnes_sync.demo.generator import FILE_OUTPUTS, FILES, WAREHOUSE, DemoData

DEMO_TOKENS_FILE = "demo-tokens.json"
ANALYSTS = "Analysts"
# What the Analysts group may NOT use, so that RBAC is visible in the demo.
NOT_GRANTED_TO_ANALYSTS = frozenset({"support_tickets"})

_DESCRIPTIONS = {
    "customers": "One row per customer: country, segment, acquisition channel, signup date.",
    "products": "Product catalogue with category and list price.",
    "orders": "One row per order: customer, date, status, channel, total amount.",
    "order_items": "Order lines: product, quantity, unit price, discount.",
    "subscriptions": "Subscriptions with plan, MRR, start and end dates.",
    "support_tickets": "Support tickets with priority, category, resolution time and CSAT.",
    "web_sessions": "Website sessions (20M+ rows at full scale), one per visit, by event_date.",
}


@dataclass(frozen=True)
class DemoTokens:
    admin: str
    analyst: str
    admin_email: str
    analyst_email: str
    path: Path


def demo_tables(data: DemoData, data_dir: Path) -> list[TableSpec]:
    """Registry entries for the demo: files as local tables, web_sessions as remote."""
    base = _relative_to(data.root, data_dir)
    specs = [
        TableSpec(
            id=table,
            description=_DESCRIPTIONS[table],
            source_type="files",
            bucket=str(base / FILES),
            source_table=file_name,
            query_mode=QueryMode.LOCAL,
            sync_schedule="every 1h",
        )
        for table, (file_name, _) in FILE_OUTPUTS.items()
    ]
    specs.append(
        TableSpec(
            id="web_sessions",
            description=_DESCRIPTIONS["web_sessions"],
            source_type="duckdb_warehouse",
            bucket=str(base / WAREHOUSE),
            source_table="web_sessions",
            query_mode=QueryMode.REMOTE,
            partition_by="event_date",
        )
    )
    return specs


def _relative_to(path: Path, parent: Path) -> Path:
    """``path`` relative to the data dir when inside it (so the data dir can move)."""
    try:
        return path.resolve().relative_to(parent.resolve())
    except ValueError:
        return path.resolve()


def _user(services: Services, email: str, name: str) -> User:
    return services.users.by_email(email) or services.users.add(email, name, added_by="demo")


def prepare(services: Services, data: DemoData) -> DemoTokens:
    """Register the demo tables, users, group and grants; return working tokens."""
    settings = services.settings
    for spec in demo_tables(data, settings.data_dir):
        try:
            services.registry.get(spec.id)
        except TableNotRegistered:
            services.registry.add(spec, registered_by="demo")

    domain = settings.company_domain
    admin = _user(services, f"admin@{domain}", "Demo Admin")
    analyst = _user(services, f"analyst@{domain}", "Demo Analyst")
    services.groups.add_member(
        ADMIN_GROUP_ID, admin.id, MembershipSource.SYSTEM_SEED, added_by="demo"
    )

    group = services.groups.by_name(ANALYSTS) or services.groups.add(
        ANALYSTS, "Analysts of the demo company."
    )
    services.groups.add_member(group.id, analyst.id, MembershipSource.ADMIN, added_by="demo")
    existing = {g.resource_id for g in services.grants.all(group_id=group.id)}
    for spec in demo_tables(data, settings.data_dir):
        if spec.id not in NOT_GRANTED_TO_ANALYSTS and spec.id not in existing:
            services.grants.add(group.id, ResourceType.TABLE, spec.id, granted_by="demo")

    return _tokens(services, admin, analyst)


def _tokens(services: Services, admin: User, analyst: User) -> DemoTokens:
    path = services.settings.state_dir / DEMO_TOKENS_FILE
    saved = _read_tokens(path)
    if (
        saved is not None
        and _works(services, saved.get("admin"), admin)
        and _works(services, saved.get("analyst"), analyst)
    ):
        return DemoTokens(saved["admin"], saved["analyst"], admin.email, analyst.email, path)
    _, admin_token = services.tokens.create(
        admin.id, "demo", [TokenScope.DATA.value, TokenScope.ADMIN.value]
    )
    _, analyst_token = services.tokens.create(analyst.id, "demo", [TokenScope.DATA.value])
    write_secret_file(path, json.dumps({"admin": admin_token, "analyst": analyst_token}, indent=2))
    return DemoTokens(admin_token, analyst_token, admin.email, analyst.email, path)


def _read_tokens(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _works(services: Services, token: str | None, user: User) -> bool:
    try:
        principal = services.tokens.authenticate(token, record_use=False)
    except AuthenticationError:
        return False
    return principal.user_id == user.id
