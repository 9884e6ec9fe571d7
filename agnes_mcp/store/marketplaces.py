"""Registered plugin marketplaces and the plugins of their last good sync (migration 8).

A marketplace is a git repository in Claude Code's marketplace format. Its row keeps
where it lives and how to reach it (the *name* of an environment variable holding a
read token, never the token) and how the last sync went. Its plugins are replaced as
one set when a sync succeeds, so a failed sync leaves the last good set served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from agnes_mcp.errors import MarketplaceExists, MarketplaceNotFound
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc, utcnow

SyncOutcome = Literal["ok", "failed"]

_COLUMNS = (
    "slug, name, url, ref, token_env, username, added_by, added_at, last_sync_at, "
    "last_sync_outcome, last_sync_error, last_sync_commit, good_commit, good_at, upstream_name"
)
_PLUGIN_COLUMNS = (
    "marketplace, name, version, description, source_path, content_hash, files, bytes, "
    "manifest, entry"
)


class Marketplace(BaseModel):
    """One registered repository and the state of its syncs."""

    slug: str
    name: str
    url: str
    ref: str | None
    token_env: str | None
    username: str | None
    added_by: str
    added_at: datetime
    last_sync_at: datetime | None
    last_sync_outcome: SyncOutcome | None
    last_sync_error: str | None
    last_sync_commit: str | None
    good_commit: str | None
    good_at: datetime | None
    upstream_name: str | None


class MarketplacePlugin(BaseModel):
    """One plugin of a marketplace's last good sync."""

    marketplace: str
    name: str
    version: str | None
    description: str | None
    source_path: str  # folder inside the repository ('' for its root)
    content_hash: str  # sha256 over the served files: same hash, same bytes served
    files: int
    bytes: int
    manifest: dict[str, Any]  # its .claude-plugin/plugin.json
    entry: dict[str, Any]  # other fields of its marketplace.json entry (category, tags, ...)

    @property
    def grant_id(self) -> str:
        """The id grants name it by: ``<marketplace slug>/<plugin name>``."""
        return f"{self.marketplace}/{self.name}"


def _marketplace(row: tuple[Any, ...]) -> Marketplace:
    values = dict(zip(_COLUMNS.split(", "), row, strict=True))
    for key in ("added_at", "last_sync_at", "good_at"):
        values[key] = as_utc(values[key])
    return Marketplace.model_validate(values)


def _plugin(row: tuple[Any, ...]) -> MarketplacePlugin:
    values = dict(zip(_PLUGIN_COLUMNS.split(", "), row, strict=True))
    values["manifest"] = json.loads(values["manifest"])
    values["entry"] = json.loads(values["entry"])
    return MarketplacePlugin.model_validate(values)


class MarketplaceRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    # --- the registry ----------------------------------------------------------------

    def add(
        self,
        slug: str,
        name: str,
        url: str,
        *,
        ref: str | None,
        token_env: str | None,
        username: str | None,
        added_by: str,
    ) -> Marketplace:
        with self._store.transaction() as cur:
            if cur.execute("SELECT 1 FROM marketplaces WHERE slug = ?", [slug]).fetchone():
                raise MarketplaceExists(
                    f"A marketplace '{slug}' is registered already.",
                    hint="Choose another slug, or remove it first: "
                    f"'agnes admin marketplace remove {slug}'.",
                )
            cur.execute(
                "INSERT INTO marketplaces (slug, name, url, ref, token_env, username, added_by, "
                "added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [slug, name, url, ref, token_env, username, added_by, utcnow()],
            )
        return self.get(slug)

    def get(self, slug: str) -> Marketplace:
        with self._store.cursor() as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM marketplaces WHERE slug = ?", [slug]
            ).fetchone()
        if row is None:
            raise MarketplaceNotFound(
                f"No marketplace '{slug}'.",
                hint="See the registered ones: 'agnes admin marketplace list'.",
            )
        return _marketplace(row)

    def all(self) -> list[Marketplace]:
        with self._store.cursor() as cur:
            rows = cur.execute(f"SELECT {_COLUMNS} FROM marketplaces ORDER BY slug").fetchall()
        return [_marketplace(r) for r in rows]

    def remove(self, slug: str) -> Marketplace:
        """Forget a marketplace, its plugins and every grant naming one of them."""
        found = self.get(slug)
        with self._store.transaction() as cur:
            cur.execute("DELETE FROM marketplace_plugins WHERE marketplace = ?", [slug])
            cur.execute(
                "DELETE FROM resource_grants WHERE resource_type = ? AND "
                "starts_with(resource_id, ?)",
                [ResourceType.MARKETPLACE_PLUGIN.value, f"{slug}/"],
            )
            cur.execute("DELETE FROM marketplaces WHERE slug = ?", [slug])
        return found

    # --- syncs ---------------------------------------------------------------------

    def record_success(
        self,
        slug: str,
        commit: str,
        upstream_name: str | None,
        plugins: Sequence[MarketplacePlugin],
    ) -> list[str]:
        """A good sync: its plugins replace the last set, in one transaction, and the grants
        of plugins it no longer serves go with them (as a table's go when it is
        unregistered): a plugin of that name that comes later, after a force-push perhaps
        another one, is not granted until an admin grants it. Returns those grants' ids."""
        now = utcnow()
        served = {p.grant_id for p in plugins}
        with self._store.transaction() as cur:
            rows = cur.execute(
                "SELECT DISTINCT resource_id FROM resource_grants WHERE resource_type = ? AND "
                "starts_with(resource_id, ?) ORDER BY 1",
                [ResourceType.MARKETPLACE_PLUGIN.value, f"{slug}/"],
            ).fetchall()
            dropped = [str(r[0]) for r in rows if r[0] not in served]
            if dropped:
                cur.execute(
                    "DELETE FROM resource_grants WHERE resource_type = ? AND "
                    "list_contains(?, resource_id)",
                    [ResourceType.MARKETPLACE_PLUGIN.value, dropped],
                )
            cur.execute("DELETE FROM marketplace_plugins WHERE marketplace = ?", [slug])
            if plugins:
                cur.executemany(
                    f"INSERT INTO marketplace_plugins ({_PLUGIN_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [
                            slug,
                            p.name,
                            p.version,
                            p.description,
                            p.source_path,
                            p.content_hash,
                            p.files,
                            p.bytes,
                            json.dumps(p.manifest, sort_keys=True),
                            json.dumps(p.entry, sort_keys=True),
                        ]
                        for p in plugins
                    ],
                )
            cur.execute(
                "UPDATE marketplaces SET last_sync_at = ?, last_sync_outcome = 'ok', "
                "last_sync_error = NULL, last_sync_commit = ?, good_commit = ?, good_at = ?, "
                "upstream_name = ? WHERE slug = ?",
                [now, commit, commit, now, upstream_name, slug],
            )
        return dropped

    def record_failure(self, slug: str, error: str, commit: str | None) -> None:
        """A failed sync: only its outcome is noted; the last good plugins stay."""
        with self._store.transaction() as cur:
            cur.execute(
                "UPDATE marketplaces SET last_sync_at = ?, last_sync_outcome = 'failed', "
                "last_sync_error = ?, last_sync_commit = ? WHERE slug = ?",
                [utcnow(), error, commit, slug],
            )

    # --- plugins -------------------------------------------------------------------

    def plugins(self, slug: str | None = None) -> list[MarketplacePlugin]:
        """Plugins of one marketplace (or all), by marketplace and name."""
        where, params = ("WHERE marketplace = ?", [slug]) if slug else ("", [])
        with self._store.cursor() as cur:
            rows = cur.execute(
                f"SELECT {_PLUGIN_COLUMNS} FROM marketplace_plugins {where} "
                "ORDER BY marketplace, name",
                params,
            ).fetchall()
        return [_plugin(r) for r in rows]
