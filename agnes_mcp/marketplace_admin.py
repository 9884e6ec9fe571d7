"""Admin operations on plugin marketplaces: one implementation for the REST routes
(``/api/admin/marketplaces*``) and the admin app's Marketplaces page.

Reads take no principal; every change takes the acting admin and writes an audit row
naming them after it succeeded. Input is checked field by field before anything is
stored, and a problem names its field (``details.fields``), so a form can show it beside
the field. A repository's read token is never taken here: only the *name* of the server
environment variable holding it, and what is shown back is that name and whether the
variable is set, never its value.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator

from agnes_mcp.api.schemas import PlainText, RequestBody
from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import MarketplaceExists, MarketplaceUrlRefused
from agnes_mcp.marketplace.service import (
    REF,
    RESERVED_SLUGS,
    SLUG,
    TOKEN_SHAPED,
    USERNAME,
    MarketplaceInfo,
)
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.marketplaces import MarketplacePlugin
from agnes_sync.env_names import ENV_NAME
from agnes_sync.errors import AgnesError

# Words that follow /api/admin/marketplaces/ as routes of their own.
# Upper case only: a token pasted by mistake (ghp_..., mixed case) is refused, not stored.


class MarketplaceCreate(RequestBody):
    """A repository to register. Its read token, if it needs one, stays in the server's
    environment: give the variable's name."""

    slug: str = Field(
        title="Slug",
        max_length=40,
        description="Short id: lowercase letters, digits and '-' (e.g. 'data-team'). Plugins "
        "are granted as '<slug>/<plugin>'.",
    )
    url: str = Field(
        title="URL",
        max_length=2000,
        description="The repository's https:// clone URL, without credentials (a local path "
        "or file:// URL only with marketplace.allow_local).",
    )
    name: PlainText = Field(
        default="",
        title="Display name",
        max_length=200,
        description="Display name (default: the slug).",
    )
    ref: str | None = Field(
        default=None,
        title="Branch, tag or commit",
        max_length=200,
        description="Branch, tag or full commit SHA (default: the repository's default branch).",
    )
    token_env: str | None = Field(
        default=None,
        title="Token variable (its name)",
        max_length=128,
        description="NAME of the server environment variable holding a read token (e.g. "
        "PLUGINS_READ_TOKEN); never the token itself.",
    )
    username: str | None = Field(
        default=None,
        title="Git user name",
        max_length=100,
        description="User name git sends with the token (default: x-access-token).",
    )
    sync: bool = Field(
        default=True, title="Sync at once", description="Queue a first sync at once."
    )

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        slug = value.strip().lower()
        if not SLUG.match(slug):
            raise ValueError(
                "use 1-40 lowercase letters, digits and '-', starting with a letter or digit"
            )
        if slug in RESERVED_SLUGS:
            raise ValueError(f"'{slug}' is reserved; choose another slug")
        return slug

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value and not REF.match(value):
            raise ValueError("not a branch, tag or full commit SHA")
        return value or None

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, value: str | None) -> str | None:
        # The value is never echoed: it might be a token typed into the wrong field.
        if value and not ENV_NAME.match(value):
            raise ValueError(
                "give the NAME of an environment variable (upper-case letters, digits and "
                "'_', e.g. PLUGINS_READ_TOKEN), never the token itself"
            )
        return value or None

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value and not USERNAME.match(value):
            raise ValueError("use letters, digits and . _ @ + - only")
        # The value is never echoed: a token typed here would be stored and shown.
        if value and TOKEN_SHAPED.match(value):
            raise ValueError(
                "this is shaped like a token, not a user name: put the token in the server "
                "environment variable token_env names"
            )
        return value or None


class MarketplaceView(MarketplaceInfo):
    """A marketplace as admins see it: its row, sync state, plugin count, and whether the
    token variable it names is set on the server (never its value)."""

    token_env_set: bool | None = Field(
        description="Whether token_env is set in the server's environment (null: no token)."
    )


class PluginRow(BaseModel):
    """One plugin of a marketplace's last good sync and who may use it."""

    marketplace: str
    plugin: str = Field(description="The name in its plugin.json.")
    grant_id: str = Field(description="What grants name it by: '<marketplace>/<plugin>'.")
    version: str | None
    description: str | None
    files: int
    bytes: int
    groups: list[str] = Field(description="Names of the groups granted it.")


class Removed(BaseModel):
    deleted: str
    plugins: int = Field(description="Plugins no longer served.")
    grants: int = Field(description="Grants of its plugins, removed with it.")


class SyncQueued(BaseModel):
    queued: list[str] = Field(description="Slugs whose sync was queued (or was already on).")


def _field(exc: AgnesError, field: str) -> AgnesError:
    exc.details.setdefault("fields", [{"field": field, "problem": exc.message}])
    return exc


@dataclass(frozen=True)
class MarketplaceAdmin:
    services: Services

    # --- reads --------------------------------------------------------------------

    def view(self, slug: str) -> MarketplaceView:
        return self._view(self.services.marketplaces.get(slug))

    def views(self) -> list[MarketplaceView]:
        return [self._view(m) for m in self.services.marketplaces.all()]

    def plugins(self, slug: str | None = None) -> list[PluginRow]:
        """Plugins of one marketplace (or all) with the groups granted each."""
        found = self.services.marketplaces.plugins(slug)
        groups: dict[str, list[str]] = {}
        for grant in self.services.grants.all(resource_type=ResourceType.MARKETPLACE_PLUGIN):
            groups.setdefault(grant.resource_id, []).append(grant.group_name)
        return [_row(p, sorted(groups.get(p.grant_id, []), key=str.lower)) for p in found]

    # --- changes ------------------------------------------------------------------

    def add(self, admin: Principal, body: MarketplaceCreate) -> MarketplaceView:
        try:
            added = self.services.marketplaces.add(
                body.slug,
                body.url,
                added_by=admin.user_id,
                name=body.name,
                ref=body.ref,
                token_env=body.token_env,
                username=body.username,
                sync=body.sync,
            )
        except MarketplaceUrlRefused as exc:
            raise _field(exc, "url") from None
        except MarketplaceExists as exc:
            raise _field(exc, "slug") from None
        self.services.audit.record(
            admin,
            "marketplace.add",
            resource=added.slug,
            params={"url": added.url, "ref": added.ref, "token_env": added.token_env},
        )
        return self.view(added.slug)

    def remove(self, admin: Principal, slug: str) -> Removed:
        """Forget a marketplace: its plugins, their grants and its files."""
        plugins = len(self.services.marketplaces.plugins(slug))  # unknown slug: 404 here
        prefix = f"{slug}/"
        grants = sum(
            1
            for g in self.services.grants.all(resource_type=ResourceType.MARKETPLACE_PLUGIN)
            if g.resource_id.startswith(prefix)
        )
        removed = self.services.marketplaces.remove(slug)
        self.services.audit.record(
            admin,
            "marketplace.remove",
            resource=removed.slug,
            params={"plugins": plugins, "grants": grants},
        )
        return Removed(deleted=removed.slug, plugins=plugins, grants=grants)

    def sync(self, admin: Principal, slug: str | None = None) -> SyncQueued:
        """Queue a sync of one marketplace (or all); never waits for it."""
        queued = self.services.marketplaces.request_sync(slug)
        self.services.audit.record(
            admin, "marketplace.sync", resource=slug or "*", params={"queued": queued}
        )
        return SyncQueued(queued=queued)

    def wait(self, slugs: list[str]) -> list[MarketplaceView]:
        """Each marketplace once its queued or running sync has finished (blocks: for the
        admin app's worker threads, never a request)."""
        for slug in slugs:
            future = self.services.marketplaces.future(slug)
            if future is not None:
                with suppress(AgnesError):  # removed meanwhile: the view below says so
                    future.result()
        return [self.view(slug) for slug in slugs]

    def _view(self, info: MarketplaceInfo) -> MarketplaceView:
        token_set = bool(os.environ.get(info.token_env)) if info.token_env else None
        return MarketplaceView(**info.model_dump(), token_env_set=token_set)


def _row(plugin: MarketplacePlugin, groups: list[str]) -> PluginRow:
    return PluginRow(
        marketplace=plugin.marketplace,
        plugin=plugin.name,
        grant_id=plugin.grant_id,
        version=plugin.version,
        description=plugin.description,
        files=plugin.files,
        bytes=plugin.bytes,
        groups=groups,
    )
