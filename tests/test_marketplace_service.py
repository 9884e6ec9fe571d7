"""The marketplace service around syncs: single-flight requests, the schedule, removal and
the collection of plugin folders nothing serves any more."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.errors import MarketplaceNotFound, MarketplaceUrlRefused
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.settings import load_settings
from tests.git_upstream import GitHttpServer, UpstreamRepo, sample_marketplace, serving

ADMIN = "admin@example.com"


def open_services(data_dir: Path, *, allow_local: bool = True) -> Services:
    settings = load_settings(
        data_dir=data_dir,
        write_behind_seconds=0.05,
        scheduler_enabled=False,
        marketplace={"allow_local": allow_local},
    )
    return Services.open(settings)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = open_services(tmp_path / "data")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def upstream(tmp_path: Path) -> UpstreamRepo:
    repo = UpstreamRepo(tmp_path / "upstream" / "plugins")
    sample_marketplace(repo)
    return repo


@pytest.fixture
def server(upstream: UpstreamRepo) -> Iterator[GitHttpServer]:
    with serving(upstream.path.parent) as running:
        yield running


def test_a_sync_asked_for_while_one_runs_joins_it(
    services: Services, server: GitHttpServer
) -> None:
    marketplaces = services.marketplaces
    server.gate.clear()  # the first fetch waits at the server
    marketplaces.add("team", server.url("plugins"), added_by=ADMIN)  # queues the first sync
    first = marketplaces.future("team")
    assert first is not None
    assert server.at_gate.wait(30)
    assert marketplaces.state("team") == "running" and marketplaces.get("team").state == "running"

    assert marketplaces.request_sync("team") == ["team"]
    assert marketplaces.request_sync() == ["team"]
    assert marketplaces.future("team") is first and marketplaces.future("team", start=True) is first

    server.gate.set()
    done = first.result(timeout=60)
    assert done.last_sync_outcome == "ok", done.last_sync_error
    assert server.fetches == 1  # one fetch for three requests
    assert marketplaces.state("team") == "idle" and marketplaces.future("team") is None
    assert marketplaces.get("team").plugins == 2


def test_the_schedule_queues_marketplaces_never_synced_or_overdue(
    services: Services, server: GitHttpServer
) -> None:
    marketplaces = services.marketplaces
    for slug in ("fresh", "never", "overdue"):
        marketplaces.add(slug, server.url("plugins"), added_by=ADMIN, sync=False)
    for slug in ("fresh", "overdue"):
        assert marketplaces.sync_now(slug).last_sync_outcome == "ok"
    with services.store.transaction() as cur:
        cur.execute(
            "UPDATE marketplaces SET last_sync_at = last_sync_at - INTERVAL 2 DAY "
            "WHERE slug = 'overdue'"
        )
    server.gate.clear()  # queued syncs wait at the server, so they can be seen queued

    wait = marketplaces._tick()

    assert marketplaces.future("fresh") is None
    queued = {slug: marketplaces.future(slug) for slug in ("never", "overdue")}
    assert all(f is not None and not f.done() for f in queued.values())
    assert 23 * 3600 < wait <= 24 * 3600  # the next one is due in a day
    server.gate.set()
    for future in queued.values():
        assert future is not None and future.result(timeout=60).last_sync_outcome == "ok"
    assert marketplaces.get("never").good_commit is not None


def test_removing_a_marketplace_deletes_its_folder_grants_rows_and_unshared_files(
    services: Services, upstream: UpstreamRepo
) -> None:
    marketplaces, layout = services.marketplaces, services.marketplaces.layout
    for slug in ("team", "copy"):  # the same repository twice: the same plugin folders
        marketplaces.add(slug, str(upstream.path), added_by=ADMIN, sync=False)
        assert marketplaces.sync_now(slug).last_sync_outcome == "ok"
    analysts = services.groups.add("Analysts")
    for grant in ("team/notes", "copy/notes"):
        services.grants.add(analysts.id, ResourceType.MARKETPLACE_PLUGIN, grant)
    hashes = {p.content_hash for p in marketplaces.plugins("team")}

    marketplaces.remove("team")

    assert not layout.marketplace_dir("team").exists()
    with pytest.raises(MarketplaceNotFound):
        marketplaces.get("team")
    with pytest.raises(MarketplaceNotFound):
        marketplaces.plugins("team")
    assert services.marketplace_store.plugins("team") == []
    granted = [
        g.resource_id for g in services.grants.all(resource_type=ResourceType.MARKETPLACE_PLUGIN)
    ]
    assert granted == ["copy/notes"]
    assert all(layout.plugin_files(h).is_dir() for h in hashes)  # 'copy' still serves them

    marketplaces.remove("copy")
    assert not any(layout.plugin_files(h).exists() for h in hashes)
    assert services.grants.all(resource_type=ResourceType.MARKETPLACE_PLUGIN) == []


def test_a_sync_collects_unreferenced_plugin_folders_but_not_ones_being_written(
    services: Services, upstream: UpstreamRepo
) -> None:
    layout = services.marketplaces.layout
    layout.plugins_dir.mkdir(parents=True)
    stale = layout.plugins_dir / ("0" * 64)
    (stale / "commands").mkdir(parents=True)
    writing = layout.plugins_dir / ".writing-in-progress"
    writing.mkdir()

    services.marketplaces.add("team", str(upstream.path), added_by=ADMIN, sync=False)
    services.marketplaces.sync_now("team")

    assert not stale.exists() and writing.is_dir()
    kept = {p.name for p in layout.plugins_dir.iterdir()}
    assert kept == {".writing-in-progress"} | {
        p.content_hash for p in services.marketplaces.plugins("team")
    }


def test_an_url_refused_by_the_settings_is_refused_at_add_and_at_every_sync(
    tmp_path: Path, upstream: UpstreamRepo
) -> None:
    data_dir = tmp_path / "data"
    permissive = open_services(data_dir)
    try:
        permissive.marketplaces.add("team", str(upstream.path), added_by=ADMIN, sync=False)
        good = permissive.marketplaces.sync_now("team")
    finally:
        permissive.close()

    strict = open_services(data_dir, allow_local=False)
    try:
        with pytest.raises(MarketplaceUrlRefused):
            strict.marketplaces.add("again", str(upstream.path), added_by=ADMIN)
        refused = strict.marketplaces.sync_now("team")
        assert refused.last_sync_outcome == "failed" and refused.good_commit == good.good_commit
        assert "marketplace.allow_local" in (refused.last_sync_error or "")
        assert len(strict.marketplaces.plugins("team")) == 2
        assert [m.slug for m in strict.marketplaces.all()] == ["team"]
    finally:
        strict.close()


def test_stopping_the_service_ends_a_fetch_waiting_on_a_slow_host(
    services: Services, server: GitHttpServer
) -> None:
    """Stopping the server waited for a fetch hanging on its host, up to
    marketplace.git_timeout_seconds (5 minutes by default): Ctrl-C or a service manager's
    stop hung that long. Stopping now kills the fetch; the sync records a failure."""
    marketplaces = services.marketplaces
    server.gate.clear()  # the fetch waits at the server
    marketplaces.add("team", server.url("plugins"), added_by=ADMIN)
    future = marketplaces.future("team")
    assert future is not None and server.at_gate.wait(30)
    stopping = threading.Thread(target=marketplaces.stop, daemon=True)
    started = time.monotonic()
    stopping.start()
    stopping.join(20)
    stopped_in = time.monotonic() - started
    server.gate.set()
    assert not stopping.is_alive() and stopped_in < 20, "stop waited for the fetch"
    assert future.result(timeout=10).last_sync_outcome == "failed"


def test_a_host_that_hangs_holds_only_its_own_marketplaces(
    services: Services, server: GitHttpServer, upstream: UpstreamRepo
) -> None:
    """Syncs ran on two workers for all marketplaces: two on a host that hangs held both,
    and every other marketplace waited for them (up to marketplace.git_timeout_seconds,
    5 minutes by default). Each host has a worker of its own now, and a host is fetched
    from once at a time."""
    marketplaces = services.marketplaces
    server.gate.clear()  # the host's fetches wait at the server
    try:
        marketplaces.add("slow-a", server.url("plugins"), added_by=ADMIN)
        marketplaces.add("slow-b", server.url("plugins"), added_by=ADMIN)
        assert server.at_gate.wait(30)
        marketplaces.add("local", str(upstream.path), added_by=ADMIN)
        local = marketplaces.future("local")
        assert local is not None and local.result(timeout=60).last_sync_outcome == "ok"
        assert marketplaces.state("slow-a") == "running"
        assert marketplaces.state("slow-b") == "queued"  # behind slow-a, on its host
    finally:
        server.gate.set()
    for slug in ("slow-a", "slow-b"):
        future = marketplaces.future(slug)
        synced = future.result(timeout=60) if future else marketplaces.get(slug)
        assert synced.last_sync_outcome == "ok"


def test_a_plugin_a_sync_no_longer_serves_loses_its_grants(
    services: Services, upstream: UpstreamRepo
) -> None:
    """A force-push may drop a plugin and bring back another under its name: the old grant
    must not hand the newcomer to the group (a table's grants go when it is unregistered)."""
    marketplaces = services.marketplaces
    marketplaces.add("team", str(upstream.path), added_by=ADMIN, sync=False)
    assert marketplaces.sync_now("team").last_sync_outcome == "ok"
    analysts = services.groups.add("Analysts")
    for grant in ("team/notes", "team/sql-review"):
        services.grants.add(analysts.id, ResourceType.MARKETPLACE_PLUGIN, grant)

    def granted() -> list[str]:
        found = services.grants.all(resource_type=ResourceType.MARKETPLACE_PLUGIN)
        return sorted(g.resource_id for g in found)

    upstream.write("plugins/notes/.claude-plugin/plugin.json", "{not json")  # a failed sync
    upstream.commit("broken notes")
    assert marketplaces.sync_now("team").last_sync_outcome == "failed"
    assert granted() == ["team/notes", "team/sql-review"]  # nothing served changed

    upstream.remove("plugins/notes")
    upstream.write_marketplace([{"name": "sql-review", "source": "./plugins/sql-review"}])
    upstream.commit("notes gone")
    assert marketplaces.sync_now("team").last_sync_outcome == "ok"
    assert granted() == ["team/sql-review"]

    upstream.write_plugin("plugins/other", "notes", description="Someone else's notes.")
    upstream.write_marketplace(
        [
            {"name": "sql-review", "source": "./plugins/sql-review"},
            {"name": "notes", "source": "./plugins/other"},
        ]
    )
    upstream.commit("another notes")
    assert marketplaces.sync_now("team").last_sync_outcome == "ok"
    assert granted() == ["team/sql-review"]
