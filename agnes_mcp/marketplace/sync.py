"""One marketplace sync: fetch the repository, check it, store its plugins' files.

Implemented in full by the sync engine; the service calls :func:`sync_marketplace` from a
background worker and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from agnes_mcp.marketplace.layout import MarketplaceLayout
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.marketplaces import Marketplace, MarketplacePlugin


@dataclass(frozen=True)
class SyncedMarketplace:
    commit: str  # the commit whose plugins are now served
    upstream_name: str | None  # the name in the repository's marketplace.json
    plugins: list[MarketplacePlugin]  # their files are in layout.plugin_files(content_hash)


def sync_marketplace(
    settings: AgnesSettings, layout: MarketplaceLayout, marketplace: Marketplace
) -> SyncedMarketplace:
    """Fetch ``marketplace`` and check it; raise an :class:`AgnesError` naming what is wrong
    (MarketplaceFetchFailed, MarketplaceRepoInvalid, MarketplaceUrlRefused). Nothing served
    changes unless it returns."""
    raise NotImplementedError
