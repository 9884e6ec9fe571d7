"""The composition root: one object holding the store, repositories and services.

The server builds exactly one :class:`Services` at start and hands it to the HTTP
routes and MCP tools; tests build their own against a ``tmp_path`` data dir.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from agnes_mcp.audit_trail import AuditTrail
from agnes_mcp.auth.bearer import BearerAuth, BearerKind
from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.auth.sessions import WebSessionService
from agnes_mcp.auth.tokens import TokenService
from agnes_mcp.catalog_view import CatalogView
from agnes_mcp.distribution.manifest import ManifestBuilder
from agnes_mcp.errors import ConfigError
from agnes_mcp.google_groups.service import GroupSync
from agnes_mcp.marketplace.service import MarketplaceService
from agnes_mcp.mcp_server.result_store import ResultStore, result_owner
from agnes_mcp.metrics.service import MetricService
from agnes_mcp.oauth.token_service import OAuthTokens
from agnes_mcp.query.service import QueryService
from agnes_mcp.query.stored_snapshots import StoredSnapshots
from agnes_mcp.rails import held_folders
from agnes_mcp.rails.extra_tables import ExtraTable
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.sources import SourceCatalog
from agnes_mcp.store.audit import AuditRepository
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.grants import GrantRepository
from agnes_mcp.store.groups import GroupRepository
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.marketplaces import MarketplaceRepository
from agnes_mcp.store.metrics import MetricRepository
from agnes_mcp.store.oauth import OAuthRepository
from agnes_mcp.store.profiles import ProfileRepository
from agnes_mcp.store.server_config import ServerConfigRepository
from agnes_mcp.store.sync_state import SyncStateRepository
from agnes_mcp.store.table_registry import TableRegistryRepository
from agnes_mcp.store.tokens import TokenRepository
from agnes_mcp.store.users import UserRepository
from agnes_mcp.store.web_sessions import WebSessionRepository
from agnes_mcp.store.write_behind import WriteBehind
from agnes_mcp.sync_service import SyncService
from agnes_sync.orchestrator import Orchestrator

INSTRUCTIONS_KEY = "agent_instructions"


def private_data_dir(folder: Path) -> None:
    """The data dir holds every table, snapshot and upload: readable by the server's own
    account only (0700), made so, or tightened if other local users could read it. One
    that cannot be a folder (a file of that name, a place this account may not write) is a
    setting to fix, said so (``ConfigError``), not the bare error of ``mkdir``."""
    fix = (
        "Pass a folder this account may write with --data-dir (or AGNES_DATA_DIR, data_dir "
        "in instance.yaml); a missing one is made."
    )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"The data dir {folder} is a file, not a folder.", hint=fix)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"Cannot make the data dir {folder}: {exc.strerror or exc}.", hint=fix
        ) from None
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077 and folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)
        logging.getLogger("agnes").warning(
            "the data dir %s was readable by other local users (mode %o); it is 0700 now",
            folder,
            mode,
        )


@dataclass
class Services:
    settings: AgnesSettings
    store: SystemStore
    users: UserRepository
    groups: GroupRepository
    grants: GrantRepository
    token_store: TokenRepository
    tokens: TokenService
    web_sessions: WebSessionService
    access: AccessControl
    audit_log: AuditRepository
    write_behind: WriteBehind
    audit: AuditTrail
    registry: TableRegistryRepository
    server_config: ServerConfigRepository
    sync_states: SyncStateRepository
    profiles: ProfileRepository
    metrics: MetricRepository
    sources: SourceCatalog
    orchestrator: Orchestrator
    sync: SyncService
    query: QueryService = field(init=False)
    catalog_view: CatalogView = field(init=False)
    metric_service: MetricService = field(init=False)
    stored_snapshots: StoredSnapshots = field(init=False)
    # Answers too large to show an agent, kept per token for it to query next: one store
    # for the MCP endpoint and the REST API, so the same token reads them through either.
    results: ResultStore = field(init=False)
    manifests: ManifestBuilder = field(init=False)
    group_sync: GroupSync = field(init=False)
    oauth_store: OAuthRepository = field(init=False)
    oauth: OAuthTokens = field(init=False)
    bearer: BearerAuth = field(init=False)
    marketplace_store: MarketplaceRepository = field(init=False)
    marketplaces: MarketplaceService = field(init=False)
    instruction_listeners: list[Callable[[str], None]] = field(init=False, default_factory=list)

    @classmethod
    def open(cls, settings: AgnesSettings) -> Services:
        """Open (and migrate) the system store of ``settings.data_dir``."""
        private_data_dir(settings.data_dir)
        store = SystemStore.open(settings.system_db_path)
        users = UserRepository(store)
        groups = GroupRepository(store)
        grants = GrantRepository(store)
        token_store = TokenRepository(store)
        audit_log = AuditRepository(store)
        session_store = WebSessionRepository(store)
        write_behind = WriteBehind(
            token_store,
            audit_log,
            users=users,
            sessions=session_store,
            interval_seconds=settings.write_behind_seconds,
        )
        registry = TableRegistryRepository(store)
        sync_states = SyncStateRepository(store)
        profiles = ProfileRepository(store)
        sources = SourceCatalog(settings)
        orchestrator = Orchestrator(settings.data_dir)
        orchestrator.relocate()  # a data dir copied or restored elsewhere: re-point it here
        tokens = TokenService(store, token_store, users, groups, write_behind)
        return cls(
            settings=settings,
            store=store,
            users=users,
            groups=groups,
            grants=grants,
            token_store=token_store,
            tokens=tokens,
            web_sessions=WebSessionService(
                settings,
                store,
                session_store,
                users,
                groups,
                write_behind,
                token_alive=tokens.alive,
                token_expires=tokens.expires_at,
            ),
            access=AccessControl(store, grants),
            audit_log=audit_log,
            write_behind=write_behind,
            audit=AuditTrail(write_behind),
            registry=registry,
            server_config=ServerConfigRepository(store),
            sync_states=sync_states,
            profiles=profiles,
            metrics=MetricRepository(store),
            sources=sources,
            orchestrator=orchestrator,
            sync=SyncService(settings, registry, sync_states, profiles, sources, orchestrator),
        )

    def __post_init__(self) -> None:
        # These join the repositories above, so they are built last.
        self.query = QueryService(
            settings=self.settings,
            store=self.store,
            registry=self.registry,
            server_config=self.server_config,
            orchestrator=self.orchestrator,
            access=self.access,
            sources=self.sources,
            audit=self.audit,
        )
        self.catalog_view = CatalogView(
            queries=self.query,
            access=self.access,
            sync_states=self.sync_states,
            profiles=self.profiles,
            audit=self.audit,
        )
        self.metric_service = MetricService(
            queries=self.query, access=self.access, metrics=self.metrics, registry=self.registry
        )
        self.results = ResultStore()
        self.stored_snapshots = StoredSnapshots(
            queries=self.query,
            access=self.access,
            root=self.settings.data_dir / "snapshots",
            max_bytes_per_user=lambda: int(self.settings.max_snapshot_bytes_per_user),
        )
        self.sync.remote_profiler = self.query.remote_profile
        self.sync.on_published = self.query.convert_tables
        self.group_sync = GroupSync(self.settings, self.store, self.users, self.write_behind)
        self.oauth_store = OAuthRepository(self.store)
        self.write_behind.oauth = self.oauth_store
        self.oauth = OAuthTokens(
            self.settings.auth.oauth,
            self.store,
            self.oauth_store,
            self.users,
            self.groups,
            on_use=self.write_behind.grant_used,
            on_replay=lambda grant, why: self.audit.record(
                None,
                "oauth.grant.revoke",
                resource=grant.id,
                params={"by": "replay", "why": why},
                user_id=grant.user_id,
                client=grant.client_name,
            ),
        )
        self.bearer = BearerAuth(
            BearerKind(
                "personal",
                lambda raw: True,
                lambda raw, ip, resource, record: self.tokens.authenticate(
                    raw, ip, record_use=record
                ),
            )
        )
        if self.settings.auth.oauth.enabled:
            self.bearer.register(
                BearerKind(
                    "oauth",
                    OAuthTokens.recognizes,
                    lambda raw, ip, resource, record: self.oauth.authenticate(
                        raw, resource=resource, record_use=record
                    ),
                )
            )
        self.marketplace_store = MarketplaceRepository(self.store)
        self.marketplaces = MarketplaceService(
            self.settings, self.store, self.marketplace_store, self.access
        )
        self.manifests = ManifestBuilder(
            queries=self.query,
            access=self.access,
            sync_states=self.sync_states,
            write_behind=self.write_behind,
        )

    def own_tables(
        self, principal: Principal, results: ResultStore | None = None
    ) -> dict[str, ExtraTable]:
        """The caller's own tables a local query reads by name: the results kept for
        their token (while they may read every table each came from; ``results``: a
        store other than the server's, an in-process backend's) and their snapshots kept
        on the server."""
        return {
            **(results or self.results).extras(
                result_owner(principal),
                lambda table: self.access.can_access(principal, ResourceType.TABLE, table),
            ),
            **self.stored_snapshots.extras(principal),
        }

    def agent_instructions(self) -> str:
        """The agent rails: an admin's text (server config) or the built-in one."""
        from agnes_mcp.agent_rails import AGENT_RAILS

        custom = self.server_config.get(INSTRUCTIONS_KEY)
        return custom if isinstance(custom, str) and custom.strip() else AGENT_RAILS

    def set_agent_instructions(self, text: str, updated_by: str) -> str:
        """Store an admin's rails (blank: back to the built-in text); MCP servers built
        from these services answer new sessions with them at once."""
        if text.strip():
            self.server_config.set(INSTRUCTIONS_KEY, text, updated_by=updated_by)
        else:
            self.server_config.delete(INSTRUCTIONS_KEY)
        current = self.agent_instructions()
        for listener in self.instruction_listeners:
            listener(current)
        return current

    def start(self) -> None:
        """Start background work: the write-behind flusher, the sync schedulers; remove
        the temporary folders (spill files, converted tables) a killed server left."""
        held_folders.sweep_all()
        self.write_behind.start()
        self.oauth_store.purge_expired(utcnow() - timedelta(days=1))  # tokens long dead
        self.sync.start()
        self.group_sync.start()
        self.marketplaces.start()

    def stop(self) -> None:
        """Stop background work; pending writes are flushed."""
        self.marketplaces.stop()
        self.group_sync.stop()
        self.sync.stop()
        self.write_behind.stop()

    def close(self) -> None:
        """Stop background work and close the store."""
        self.stop()
        self.query.close()
        self.store.close()
