"""A caller's feed: the plugins granted to their groups, as one Claude Code marketplace.

A :class:`Feed` is pure data computed from the store (no file is read), so it is cheap
on every request. Its ``key`` is a hash of everything that goes into the served bytes
(the marketplace's name and description, each plugin's content hash, folder and
entry, and :data:`FORMAT`), so two callers with the same grants share one key, one
ZIP and one git repository, and the ZIP's strong ETag is the key.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.marketplaces import MarketplacePlugin

# Bump when the layout of the served files changes: every feed gets a new key.
FORMAT = 1
PLUGINS_FOLDER = "plugins"
MARKETPLACE_JSON = ".claude-plugin/marketplace.json"
# plugin.json fields copied into the marketplace entry (the entry may override them).
_FROM_MANIFEST = (
    "description",
    "version",
    "author",
    "homepage",
    "repository",
    "license",
    "keywords",
)


@dataclass(frozen=True)
class FeedEntry:
    plugin: MarketplacePlugin
    shown_name: str  # the name Claude Code shows (plugin.json's, '<slug>-<name>' on a clash)
    folder: str  # where its files sit in the served tree, e.g. ``plugins/tools-sql-review``

    def marketplace_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            key: self.plugin.manifest[key] for key in _FROM_MANIFEST if key in self.plugin.manifest
        }
        entry.update(self.plugin.entry)
        entry["name"] = self.shown_name
        entry["source"] = f"./{self.folder}"
        return entry


@dataclass(frozen=True)
class Feed:
    name: str
    description: str
    owner: str
    entries: tuple[FeedEntry, ...]
    key: str

    @property
    def etag(self) -> str:
        """The strong ETag of the ZIP (and of ``/api/marketplace/info``'s ``etag``)."""
        return f'"{self.key}"'

    def marketplace_json(self) -> bytes:
        """The synthesized ``.claude-plugin/marketplace.json`` (sorted keys: stable bytes)."""
        document = {
            "name": self.name,
            "owner": {"name": self.owner},
            "metadata": {"description": self.description},
            "plugins": [entry.marketplace_entry() for entry in self.entries],
        }
        return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def build_feed(settings: AgnesSettings, plugins: Iterable[MarketplacePlugin]) -> Feed:
    """The feed of these plugins (already filtered to what the caller was granted)."""
    ordered = sorted(plugins, key=lambda p: (p.marketplace, p.name))
    clashes = Counter(p.manifest.get("name", p.name) for p in ordered)
    # '<slug>-<name>' is not unique by itself ('a' + 'b-c' and 'a-b' + 'c' both read
    # 'a-b-c'): a name or folder met twice is made unique, so no two plugins share one.
    shown = unique([_shown_name(p, clashes[p.manifest.get("name", p.name)] > 1) for p in ordered])
    folders = unique([f"{p.marketplace}-{p.name}" for p in ordered])
    entries = tuple(
        FeedEntry(p, name, f"{PLUGINS_FOLDER}/{folder}")
        for p, name, folder in zip(ordered, shown, folders, strict=True)
    )
    marketplace = settings.marketplace
    key_material = {
        "format": FORMAT,
        "name": marketplace.name,
        "description": marketplace.description,
        "owner": settings.instance_name,
        "plugins": [
            {"folder": e.folder, "hash": e.plugin.content_hash, "entry": e.marketplace_entry()}
            for e in entries
        ],
    }
    digest = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()
    return Feed(
        name=marketplace.name,
        description=marketplace.description,
        owner=settings.instance_name,
        entries=entries,
        key=digest[:32],
    )


def unique(names: list[str]) -> list[str]:
    """``names`` in order, each repeat given the first free ``<name>-2``, ``<name>-3``, ...
    (never a name another entry has itself)."""
    wanted, taken = set(names), set()
    out: list[str] = []
    for name in names:
        candidate, number = name, 2
        while candidate in taken or (candidate != name and candidate in wanted):
            candidate, number = f"{name}-{number}", number + 1
        taken.add(candidate)
        out.append(candidate)
    return out


def _shown_name(plugin: MarketplacePlugin, clashes: bool) -> str:
    name = str(plugin.manifest.get("name", plugin.name))
    return f"{plugin.marketplace}-{name}" if clashes else name
