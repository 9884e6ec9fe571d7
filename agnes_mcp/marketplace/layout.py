"""Where marketplace files live under ``DATA_DIR/marketplaces/``.

- ``<slug>/repo.git``: the bare mirror of an upstream repository (fetched, never checked out).
- ``_plugins/<content hash>/``: one plugin's files as served; written once, never changed,
  so a feed being built never sees a half-written plugin and a failed sync touches nothing.
- ``_feeds/<feed key>.zip`` and ``_feeds/<feed key>.git``: a built feed (ZIP, bare repo).

Slugs cannot start with ``_``, so the shared folders never meet a marketplace's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MarketplaceLayout:
    root: Path

    def marketplace_dir(self, slug: str) -> Path:
        return self.root / slug

    def mirror(self, slug: str) -> Path:
        return self.root / slug / "repo.git"

    @property
    def plugins_dir(self) -> Path:
        return self.root / "_plugins"

    def plugin_files(self, content_hash: str) -> Path:
        return self.plugins_dir / content_hash

    @property
    def feeds_dir(self) -> Path:
        return self.root / "_feeds"

    def feed_zip(self, key: str) -> Path:
        return self.feeds_dir / f"{key}.zip"

    def feed_repo(self, key: str) -> Path:
        return self.feeds_dir / f"{key}.git"
