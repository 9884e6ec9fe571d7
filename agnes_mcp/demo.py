"""Wiring the demo company into a server: tables, users, a group with grants, tokens,
and (with ``marketplace.allow_local``) a sample plugin marketplace, one plugin granted.

Idempotent: a second run on the same data dir keeps what is there and reuses the
tokens in ``state/demo-tokens.json`` while they still work.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.bootstrap_admin import write_secret_file
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.errors import AuthenticationError, MarketplaceNotFound, TableNotRegistered
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.settings import CONFIG_FILE_NAME, AgnesSettings, SourceSettings
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.users import User
from agnes_mcp.sync_service import SyncResult
from agnes_sync.demo.generator import FILES, WAREHOUSE, DemoData
from agnes_sync.demo.marketplace_sample import FOLDER as SAMPLE_FOLDER
from agnes_sync.demo.marketplace_sample import GRANTED_PLUGIN, ensure_sample_marketplace
from agnes_sync.errors import AgnesError
from agnes_sync.table_spec import PartitionGranularity, QueryMode, SyncStrategy, TableSpec

logger = logging.getLogger("agnes.demo")

DEMO_TOKENS_FILE = "demo-tokens.json"
DEMO_MARKETPLACE = "demo"  # the slug of the sample marketplace
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
    "web_sessions_daily": "Sessions, pageviews and conversions per day, country, device, source.",
}


@dataclass(frozen=True)
class DemoTokens:
    admin: str
    analyst: str
    admin_email: str
    analyst_email: str
    path: Path


def demo_sources(data: DemoData, data_dir: Path) -> dict[str, SourceSettings]:
    """The demo's two sources: its files, and its DuckDB stand-in warehouse."""
    base = _relative_to(data.root, data_dir)
    return {
        "files": SourceSettings(
            connector="files",
            description="The demo company's exports (CSV, parquet, NDJSON).",
            options={"path": str(base / FILES)},
        ),
        "duckdb_warehouse": SourceSettings(
            connector="duckdb_warehouse",
            description="The demo's warehouse (a DuckDB file standing in for BigQuery).",
            options={"path": str(base / WAREHOUSE)},
        ),
    }


def with_local_marketplaces(settings: AgnesSettings) -> AgnesSettings:
    """Settings allowing local marketplace repositories (the demo's sample is one)."""
    marketplace = settings.marketplace.model_copy(update={"allow_local": True})
    return settings.model_copy(update={"marketplace": marketplace})


def with_demo_sources(settings: AgnesSettings, data: DemoData) -> AgnesSettings:
    """Settings with the demo sources added (kept if already configured), and an
    ``instance.yaml`` written into the data dir if there is none, so that a later
    ``agnes serve --data-dir`` serves the same sources."""
    sources = {**demo_sources(data, settings.data_dir), **settings.sources}
    config = settings.data_dir / CONFIG_FILE_NAME
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "sources": {k: v.model_dump() for k, v in sources.items()},
            "marketplace": {"allow_local": True},  # the demo's sample is a local repository
        }
        config.write_text(
            "# Written by 'agnes demo'. See docs/configuration.md for every setting.\n"
            + yaml.safe_dump(payload, sort_keys=False),
            encoding="utf-8",
        )
    return settings.model_copy(update={"sources": sources})


def demo_tables() -> list[TableSpec]:
    """Registry entries: files as local tables (showing every sync strategy), web_sessions
    as a remote table, and a materialized daily roll-up of it."""
    return [
        TableSpec(
            id="customers",
            description=_DESCRIPTIONS["customers"],
            source_type="files",
            source_table="customers.csv",
            primary_key=["customer_id"],
            sync_schedule="every 1h",
        ),
        TableSpec(
            id="products",
            description=_DESCRIPTIONS["products"],
            source_type="files",
            source_table="products.csv",
            primary_key=["product_id"],
            sync_schedule="every 1h",
        ),
        TableSpec(
            id="orders",
            description=_DESCRIPTIONS["orders"],
            source_type="files",
            source_table="orders.parquet",
            primary_key=["order_id"],
            sync_schedule="every 1h",
            sync_strategy=SyncStrategy.PARTITIONED,
            partition_by="order_date",
            partition_granularity=PartitionGranularity.MONTH,
        ),
        TableSpec(
            id="order_items",
            description=_DESCRIPTIONS["order_items"],
            source_type="files",
            source_table="order_items.parquet",
            primary_key=["order_id", "line_no"],
            sync_schedule="every 1h",
        ),
        TableSpec(
            id="subscriptions",
            description=_DESCRIPTIONS["subscriptions"],
            source_type="files",
            source_table="subscriptions.csv",
            primary_key=["subscription_id"],
            sync_schedule="every 1h",
        ),
        TableSpec(
            id="support_tickets",
            description=_DESCRIPTIONS["support_tickets"],
            source_type="files",
            source_table="support_tickets.ndjson",
            primary_key=["ticket_id"],
            sync_schedule="every 15m",
            sync_strategy=SyncStrategy.INCREMENTAL,
            incremental_column="created_at",
            incremental_window_days=3,
        ),
        TableSpec(
            id="web_sessions",
            description=_DESCRIPTIONS["web_sessions"],
            source_type="duckdb_warehouse",
            bucket="main",
            source_table="web_sessions",
            query_mode=QueryMode.REMOTE,
            partition_by="event_date",
            sync_schedule="daily 02:00",
        ),
        TableSpec(
            id="web_sessions_daily",
            description=_DESCRIPTIONS["web_sessions_daily"],
            source_type="duckdb_warehouse",
            query_mode=QueryMode.MATERIALIZED,
            source_query=(
                "SELECT event_date, country_code, device, traffic_source, count(*) AS sessions, "
                "sum(pageviews) AS pageviews, sum(converted::INTEGER) AS conversions "
                "FROM main.web_sessions GROUP BY ALL ORDER BY ALL"
            ),
            sync_schedule="daily 03:00",
        ),
    ]


def _relative_to(path: Path, parent: Path) -> Path:
    """``path`` relative to the data dir when inside it (so the data dir can move)."""
    try:
        return path.resolve().relative_to(parent.resolve())
    except ValueError:
        return path.resolve()


def _user(services: Services, email: str, name: str) -> User:
    return services.users.by_email(email) or services.users.add(email, name, added_by="demo")


def prepare(services: Services) -> DemoTokens:
    """Register the demo tables, users, group and grants; return working tokens."""
    settings = services.settings
    for spec in demo_tables():
        try:
            services.registry.get(spec.id)
        except TableNotRegistered:
            services.sync.validate(spec)
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
    for spec in demo_tables():
        if spec.id not in NOT_GRANTED_TO_ANALYSTS and spec.id not in existing:
            services.grants.add(group.id, ResourceType.TABLE, spec.id, granted_by="demo")

    _starter_metrics(services, admin, group.id)
    prepare_marketplace(services, group.id)
    return _tokens(services, admin, analyst)


def prepare_marketplace(services: Services, group_id: str) -> list[str]:
    """Build the sample marketplace in the data dir, register it as ``demo``, sync it
    (when its commit is not the one served) and grant its first plugin to the group.
    Returns the grant ids of the group's plugins ([] when skipped: ``allow_local`` off,
    no git, or a failed sync, which the server log and the admin app show)."""
    settings = services.settings
    if not settings.marketplace.allow_local:
        return []
    folder = settings.data_dir / SAMPLE_FOLDER
    try:
        commit = ensure_sample_marketplace(folder)
    except AgnesError as exc:
        logger.warning("demo marketplace skipped: %s", exc.message)
        return []
    marketplaces = services.marketplaces
    try:
        current = marketplaces.get(DEMO_MARKETPLACE)
    except MarketplaceNotFound:
        current = None
    if current is not None and current.url != str(folder.resolve()):
        marketplaces.remove(DEMO_MARKETPLACE)  # the data dir moved: register it again
        current = None
    if current is None:
        marketplaces.add(
            DEMO_MARKETPLACE,
            str(folder.resolve()),
            added_by="demo",
            name="Demo company plugins",
            sync=False,
        )
    if current is None or current.good_commit != commit:
        marketplaces.sync_now(DEMO_MARKETPLACE)
    plugins = {p.grant_id for p in marketplaces.plugins(DEMO_MARKETPLACE)}
    wanted = f"{DEMO_MARKETPLACE}/{GRANTED_PLUGIN}"
    kind = ResourceType.MARKETPLACE_PLUGIN
    existing = {g.resource_id for g in services.grants.all(group_id=group_id, resource_type=kind)}
    if wanted in plugins and wanted not in existing:
        services.grants.add(group_id, kind, wanted, granted_by="demo")
        existing.add(wanted)
    return sorted(existing & plugins)


def starter_metrics_dir() -> Path | None:
    """The starter metric pack: ``docs/metrics`` in a checkout, or its copy in the wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "docs" / "metrics", package / "starter_metrics"):
        if candidate.is_dir():
            return candidate
    return None


def _starter_metrics(services: Services, admin: User, group_id: str) -> None:
    """Import the starter pack once and grant the analysts the metrics over their tables."""
    from agnes_mcp.metrics.loader import load_texts, read_directory

    folder = starter_metrics_dir()
    if folder is None or services.metrics.all():
        return
    definitions = load_texts(read_directory(folder))
    services.metrics.put_many(definitions, updated_by=admin.id, replace=False)
    existing = {g.resource_id for g in services.grants.all(group_id=group_id)}
    for metric in definitions:
        readable = not set(metric.all_tables) & NOT_GRANTED_TO_ANALYSTS
        if readable and metric.id not in existing:
            services.grants.add(group_id, ResourceType.METRIC, metric.id, granted_by="demo")


def first_sync(services: Services, *, regenerated: bool = False) -> list[SyncResult]:
    """Sync the demo tables that have never synced successfully (all of them, the first
    time, and after the demo data was generated again)."""
    states = services.sync_states.all()
    pending = [
        spec.id
        for spec in demo_tables()
        if regenerated or states.get(spec.id) is None or states[spec.id].last_success_at is None
    ]
    return services.sync.sync_many(pending, "demo") if pending else []


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
