"""One marketplace sync: fetch the repository, check it, store its plugins' files.

1. :func:`~.upstream.fetch_upstream` brings the upstream's branches and tags into the
   bare mirror ``<slug>/repo.git`` and :func:`~.upstream.resolve_ref` picks the commit.
2. :func:`~.repo_check.check_repository` reads that commit (no checkout) and refuses it,
   naming the file, if anything in it breaks the format or a safety rule.
3. :func:`~.plugin_store.store_plugin` copies each plugin's files into the
   content-addressed ``_plugins/<hash>/``.

Nothing served changes here: the caller records the returned plugins in one
transaction. A failure at any step leaves the last good plugins, their folders and the
mirror's refs as they were (a fetch that dies halfway updates no ref).
"""

from __future__ import annotations

from dataclasses import dataclass

from agnes_mcp.errors import MarketplaceRepoInvalid
from agnes_mcp.marketplace.git_command import GitProcesses
from agnes_mcp.marketplace.layout import MarketplaceLayout
from agnes_mcp.marketplace.plugin_store import StoredFile, store_plugin
from agnes_mcp.marketplace.repo_check import CheckedPlugin, PluginFile, check_repository
from agnes_mcp.marketplace.repo_reader import RepoReader
from agnes_mcp.marketplace.upstream import fetch_upstream, resolve_ref
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.marketplaces import Marketplace, MarketplacePlugin


@dataclass(frozen=True)
class SyncedMarketplace:
    commit: str  # the commit whose plugins are now served
    upstream_name: str | None  # the name in the repository's marketplace.json
    plugins: list[MarketplacePlugin]  # their files are in layout.plugin_files(content_hash)


def sync_marketplace(
    settings: AgnesSettings,
    layout: MarketplaceLayout,
    marketplace: Marketplace,
    processes: GitProcesses | None = None,
) -> SyncedMarketplace:
    """Fetch ``marketplace`` and check it; raise an :class:`AgnesError` naming what is wrong
    (MarketplaceFetchFailed, MarketplaceRepoInvalid, MarketplaceUrlRefused). Nothing served
    changes unless it returns. A refused commit is on the error as ``commit``."""
    mirror = layout.mirror(marketplace.slug)
    fetch_upstream(settings, mirror, marketplace, processes)
    commit = resolve_ref(mirror, marketplace.ref)
    try:
        with RepoReader.open(mirror, commit, settings.marketplace.max_repo_files) as repo:
            checked = check_repository(repo, settings.marketplace)
            plugins = [_store(layout, repo, marketplace.slug, p) for p in checked.plugins]
    except MarketplaceRepoInvalid as exc:
        exc.commit = commit  # the service records it as last_sync_commit
        raise
    return SyncedMarketplace(commit=commit, upstream_name=checked.upstream_name, plugins=plugins)


def _store(
    layout: MarketplaceLayout, repo: RepoReader, slug: str, plugin: CheckedPlugin
) -> MarketplacePlugin:
    stored = store_plugin(layout, (_stored_file(repo, f) for f in plugin.files))
    return MarketplacePlugin(
        marketplace=slug,
        name=plugin.name,
        version=plugin.version,
        description=plugin.description,
        source_path=plugin.source_path,
        content_hash=stored.content_hash,
        files=stored.files,
        bytes=stored.bytes,
        manifest=plugin.manifest,
        entry=plugin.entry,
    )


def _stored_file(repo: RepoReader, file: PluginFile) -> StoredFile:
    return StoredFile(file.rel, file.blob.executable, lambda: repo.read(file.blob))
