"""What ``/me`` shows, gathered from the same services the REST API and MCP tools use.

Nothing here reads the system DB directly: groups come from the group repository (and the
last Google group sync from the group sync service), tables from the catalog view (the MCP
``catalog`` tool), metrics from the metric service, tokens from the token repository and
connected applications (OAuth grants) from :mod:`agnes_mcp.oauth_admin`, each through the
signed-in person's principal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agnes_mcp.api.routes.well_known import MCP_PATH
from agnes_mcp.auth.sessions import WebSession
from agnes_mcp.builtin_groups import EVERYONE_GROUP_ID
from agnes_mcp.catalog_models import CatalogEntry
from agnes_mcp.errors import GroupNotFound
from agnes_mcp.metrics.summary import MetricSummary
from agnes_mcp.oauth_admin import OAuthGrantInfo, own_grants
from agnes_mcp.services import Services
from agnes_mcp.store.group_sync import GroupSyncStatus
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.tokens import TokenInfo

TOKEN_PLACEHOLDER = "<TOKEN>"  # noqa: S105 - the placeholder shown in place of a token


@dataclass(frozen=True)
class MyGroup:
    id: str
    name: str
    sources: tuple[MembershipSource, ...]


@dataclass(frozen=True)
class MeView:
    session: WebSession
    groups: list[MyGroup]
    tables: list[CatalogEntry]
    metrics: list[MetricSummary]
    tokens: list[TokenInfo]
    base_url: str
    group_sync_enabled: bool
    group_sync_status: GroupSyncStatus | None
    oauth_grants: list[OAuthGrantInfo] = field(default_factory=list)
    oauth_enabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.session.principal.is_admin


def my_groups(services: Services, session: WebSession) -> list[MyGroup]:
    """The person's groups, each with the writers that put them there (admin, Google
    sync, the built-in seed). Everyone holds every user, so its members are not listed."""
    names = services.groups.names()
    found: list[MyGroup] = []
    for group_id in session.principal.group_ids:
        if group_id == EVERYONE_GROUP_ID:
            sources: tuple[MembershipSource, ...] = (MembershipSource.SYSTEM_SEED,)
        else:
            try:
                members = services.groups.members(group_id)
            except GroupNotFound:  # deleted since the session was read
                continue
            sources = tuple(sorted({m.source for m in members if m.user_id == session.user_id}))
        found.append(MyGroup(group_id, names.get(group_id, group_id), sources))
    return sorted(found, key=lambda g: (g.id != EVERYONE_GROUP_ID, g.name.lower()))


def load(services: Services, session: WebSession) -> MeView:
    principal = session.principal
    return MeView(
        session=session,
        groups=my_groups(services, session),
        tables=services.catalog_view.entries(principal),
        metrics=services.metric_service.summaries(principal),
        tokens=list(reversed(services.token_store.all(user_id=principal.user_id))),
        base_url=services.settings.base_url,
        group_sync_enabled=services.group_sync.enabled,
        group_sync_status=services.group_sync.status(principal.user_id),
        oauth_grants=own_grants(services, principal),
        oauth_enabled=services.settings.auth.oauth.enabled,
    )


def oauth_line(base_url: str) -> str:
    """Claude Code with OAuth: no token to paste; it signs in in the browser."""
    return f"claude mcp add --transport http agnes {base_url}{MCP_PATH}"


def paste_lines(base_url: str, token: str = TOKEN_PLACEHOLDER) -> tuple[str, str]:
    """The two commands that connect a laptop: the CLI workspace and Claude Code's MCP."""
    return (
        f"agnes init --server-url {base_url} --token {token}",
        f"claude mcp add --transport http agnes {base_url}{MCP_PATH} "
        f'--header "Authorization: Bearer {token}"',
    )
