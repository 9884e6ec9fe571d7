"""The marketplace service: the registry, syncs in the background, and callers' feeds.

Syncs never run on a request: :meth:`MarketplaceService.request_sync` queues them on a
worker of their host (one sync at a time per host, so a host that hangs holds only its own
marketplaces and a host is never fetched from twice at once; asking again while a sync is
queued or running joins it) and a :class:`~agnes_mcp.background_loop.BackgroundLoop` queues every
marketplace whose last sync is older than ``marketplace.sync_interval_hours``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.background_loop import BackgroundLoop
from agnes_mcp.errors import InvalidRequest, MarketplaceRepoInvalid
from agnes_mcp.marketplace.feed import Feed, build_feed
from agnes_mcp.marketplace.git_command import GitProcesses
from agnes_mcp.marketplace.layout import MarketplaceLayout
from agnes_mcp.marketplace.sync import sync_marketplace
from agnes_mcp.marketplace.token_policy import check_token_env
from agnes_mcp.marketplace.url_policy import check_source_url
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.generation_cache import GenerationCache
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.marketplaces import Marketplace, MarketplacePlugin, MarketplaceRepository
from agnes_sync.env_names import ENV_NAME
from agnes_sync.errors import AgnesError

logger = logging.getLogger("agnes.marketplace")

SyncState = Literal["idle", "queued", "running"]
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# Names the admin API uses under /api/admin/marketplaces/ for other things.
RESERVED_SLUGS = frozenset({"plugins", "sync"})
# A branch or tag name as git allows it (check-ref-format, simplified), or a full SHA.
REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+-]{1,200}(?<![./])$")
USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,100}$")
# What a token pasted as the git user name looks like: GitHub's (classic, fine-grained,
# OAuth, app), GitLab's, Bitbucket's app passwords' tokens, and Agnes's own.
TOKEN_SHAPED = re.compile(
    r"^(?:(?i:gh[pousr]_|github_pat_|glpat-)\w|(?:ATBB|ATCTT)[A-Za-z0-9]{8}|agnes_[a-z0-9]{10}_)"
)
_STALE_WRITE_SECONDS = 24 * 3600


class MarketplaceInfo(Marketplace):
    """A registered marketplace as the API lists it: its row, its sync state now and how
    many plugins its last good sync holds."""

    state: SyncState
    plugins: int


class MarketplaceService:
    def __init__(
        self,
        settings: AgnesSettings,
        store: SystemStore,
        repository: MarketplaceRepository,
        access: AccessControl,
    ) -> None:
        self.settings = settings
        self.layout = MarketplaceLayout(settings.marketplaces_dir)
        self._store = store
        self._repo = repository
        self._access = access
        self._lock = threading.Lock()
        self._slug_locks: dict[str, threading.Lock] = {}
        self._futures: dict[str, Future[Marketplace]] = {}
        self._running: set[str] = set()
        self._executors: dict[str, ThreadPoolExecutor] = {}  # one worker per host
        self._git = GitProcesses()  # the syncs' fetches, killed when the service stops
        self._stop = threading.Event()
        self._loop = BackgroundLoop("agnes-marketplace-sync", self._tick, self._stop, logger=logger)
        self._feeds: GenerationCache[frozenset[str], Feed] = GenerationCache(store, 256)
        self._plugins_cache: GenerationCache[str, list[MarketplacePlugin]] = GenerationCache(
            store, 1
        )

    # --- the registry ----------------------------------------------------------------

    def add(
        self,
        slug: str,
        url: str,
        *,
        added_by: str,
        name: str | None = None,
        ref: str | None = None,
        token_env: str | None = None,
        username: str | None = None,
        sync: bool = True,
    ) -> Marketplace:
        """Register a repository (checked, nothing fetched yet) and queue its first sync."""
        slug = slug.strip().lower()
        if not SLUG.match(slug):
            raise InvalidRequest(
                f"'{slug}' is not a marketplace slug.",
                hint="Use 1-40 lowercase letters, digits and '-', starting with a letter or "
                "digit, e.g. 'data-team'.",
            )
        if slug in RESERVED_SLUGS:
            raise InvalidRequest(f"'{slug}' is reserved; choose another slug.")
        checked_url = check_source_url(url, allow_local=self.settings.marketplace.allow_local)
        ref = (ref or "").strip() or None
        if ref is not None and not REF.match(ref):
            raise InvalidRequest(
                f"'{ref}' is not a branch, tag or commit SHA.",
                hint="Give a branch ('main'), a tag ('v1.2.0') or a full 40-hex commit SHA.",
            )
        token_env = (token_env or "").strip() or None
        if token_env is not None and not ENV_NAME.match(token_env):
            raise InvalidRequest(  # the value is never echoed: it may be the token itself
                "token_env is not an environment variable name.",
                hint="Give the NAME of the variable holding the read token (upper case, e.g. "
                "PLUGINS_READ_TOKEN), never the token itself.",
            )
        if token_env is not None:
            check_token_env(token_env, self.settings.marketplace)
        username = (username or "").strip() or None
        if username is not None and not USERNAME.match(username):
            raise InvalidRequest(f"'{username}' is not a user name git can send.")
        added = self._repo.add(
            slug,
            (name or "").strip() or slug,
            checked_url,
            ref=ref,
            token_env=token_env,
            username=username,
            added_by=added_by,
        )
        if sync:
            self.request_sync(slug)
        return added

    def get(self, slug: str) -> MarketplaceInfo:
        return self._info(self._repo.get(slug))

    def all(self) -> list[MarketplaceInfo]:
        return [self._info(m) for m in self._repo.all()]

    def remove(self, slug: str) -> Marketplace:
        """Forget a marketplace: its row, plugins, grants and files (after a running sync)."""
        with self._slug_lock(slug):
            removed = self._repo.remove(slug)
            shutil.rmtree(self.layout.marketplace_dir(slug), ignore_errors=True)
        self._collect_plugin_files()
        return removed

    def plugins(self, slug: str | None = None) -> list[MarketplacePlugin]:
        if slug is not None:
            self._repo.get(slug)  # an unknown slug is an error, not an empty list
        return self._repo.plugins(slug)

    # --- syncs ---------------------------------------------------------------------

    def request_sync(self, slug: str | None = None) -> list[str]:
        """Queue a sync of one marketplace (or all); returns the slugs queued or joined."""
        slugs = [self._repo.get(slug).slug] if slug else [m.slug for m in self._repo.all()]
        for name in slugs:
            self.future(name, start=True)
        return slugs

    def future(self, slug: str, *, start: bool = False) -> Future[Marketplace] | None:
        """The queued or running sync of ``slug`` (started if asked and none is)."""
        with self._lock:
            current = self._futures.get(slug)
            if current is not None and not current.done():
                return current
            if not start:
                return None
        host = _host_of(self._repo.get(slug).url)  # a store read: not under the lock
        with self._lock:
            current = self._futures.get(slug)  # one started meanwhile is joined
            if current is not None and not current.done():
                return current
            executor = self._executors.get(host)
            if executor is None:
                executor = self._executors[host] = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="agnes-marketplace"
                )
            future = executor.submit(self.sync_now, slug)
            self._futures[slug] = future
            return future

    def sync_now(self, slug: str) -> Marketplace:
        """Sync one marketplace in this thread and record the outcome (never raises for a
        failed sync: the failure is recorded and the last good plugins stay)."""
        with self._slug_lock(slug):
            marketplace = self._repo.get(slug)
            with self._lock:
                self._running.add(slug)
            try:
                synced = sync_marketplace(self.settings, self.layout, marketplace, self._git)
            except AgnesError as exc:
                message = exc.message + (f" {exc.hint}" if exc.hint else "")
                logger.warning("marketplace %s: sync failed: %s", slug, exc.message)
                refused = exc.commit if isinstance(exc, MarketplaceRepoInvalid) else None
                self._repo.record_failure(slug, message, refused)
            except Exception:
                logger.exception("marketplace %s: sync failed unexpectedly", slug)
                self._repo.record_failure(
                    slug, "The sync failed unexpectedly; the server log has the details.", None
                )
            else:
                dropped = self._repo.record_success(
                    slug, synced.commit, synced.upstream_name, synced.plugins
                )
                logger.info(
                    "marketplace %s: synced %s, %d plugins",
                    slug,
                    synced.commit[:12],
                    len(synced.plugins),
                )
                if dropped:
                    logger.warning(
                        "marketplace %s: no longer serves %s; removed their grants",
                        slug,
                        ", ".join(dropped),
                    )
            finally:
                with self._lock:
                    self._running.discard(slug)
        self._collect_plugin_files()
        return self._repo.get(slug)

    def state(self, slug: str) -> SyncState:
        with self._lock:
            if slug in self._running:
                return "running"
            future = self._futures.get(slug)
            return "queued" if future is not None and not future.done() else "idle"

    def _slug_lock(self, slug: str) -> threading.Lock:
        with self._lock:
            return self._slug_locks.setdefault(slug, threading.Lock())

    def _info(self, marketplace: Marketplace) -> MarketplaceInfo:
        count = sum(1 for p in self._all_plugins() if p.marketplace == marketplace.slug)
        return MarketplaceInfo(
            **marketplace.model_dump(), state=self.state(marketplace.slug), plugins=count
        )

    def _tick(self) -> float:
        """Queue every marketplace due; the seconds until the next one is due."""
        interval = timedelta(hours=self.settings.marketplace.sync_interval_hours)
        now = utcnow()
        next_due: datetime | None = None
        for marketplace in self._repo.all():
            due = (marketplace.last_sync_at or marketplace.added_at) + interval
            if marketplace.last_sync_at is None or due <= now:
                self.future(marketplace.slug, start=True)
                due = now + interval
            next_due = due if next_due is None else min(next_due, due)
        if next_due is None:
            return interval.total_seconds()
        return max((next_due - now).total_seconds(), 1.0)

    def _collect_plugin_files(self) -> None:
        """Remove plugin folders no marketplace serves any more (never one being written:
        those start with '.', and are removed only when a crash left them a day ago)."""
        folder = self.layout.plugins_dir
        if not folder.is_dir():
            return
        with self._lock:
            if self._running:
                return  # a sync may be about to record folders it just wrote
            referenced = {p.content_hash for p in self._repo.plugins()}
            stale = time.time() - _STALE_WRITE_SECONDS
            for entry in folder.iterdir():
                if entry.name.startswith("."):
                    # Being written by a sync (or left by one that crashed long ago).
                    with contextlib.suppress(OSError):
                        if entry.stat().st_mtime < stale:
                            shutil.rmtree(entry, ignore_errors=True)
                elif entry.name not in referenced:
                    shutil.rmtree(entry, ignore_errors=True)

    # --- feeds ---------------------------------------------------------------------

    def feed_for(self, principal: Principal) -> Feed:
        """The plugins granted to one of the caller's groups (Admin gets no shortcut)."""
        granted = self._access.granted_to_groups(principal, ResourceType.MARKETPLACE_PLUGIN)
        return self._feeds.get(
            granted,
            lambda: build_feed(
                self.settings, [p for p in self._all_plugins() if p.grant_id in granted]
            ),
        )

    def _all_plugins(self) -> list[MarketplacePlugin]:
        return self._plugins_cache.get("all", self._repo.plugins)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the scheduled syncs (when the server's scheduler is on and an interval set)."""
        if self.settings.scheduler_enabled and self.settings.marketplace.sync_interval_hours > 0:
            self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        self._git.stop()  # a fetch waiting on a slow host ends now, not at its timeout
        with self._lock:
            executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            executor.shutdown(wait=True, cancel_futures=True)


def _host_of(url: str) -> str:
    """The host a marketplace's URL fetches from (``""`` for a local path)."""
    return (urlsplit(url).hostname or "").lower() if "://" in url else ""
