"""The demo's sample plugin marketplace: built deterministically, registered and synced
by ``prepare``, one plugin granted to the Analysts; the feed is what each caller's
groups are granted (the admin gets no shortcut); a second ``prepare`` changes nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from agnes_mcp.demo import ANALYSTS, DEMO_MARKETPLACE, prepare
from agnes_mcp.resource_types import ResourceType
from agnes_sync.demo.marketplace_sample import (
    GRANTED_PLUGIN,
    OTHER_PLUGIN,
    ensure_sample_marketplace,
    sample_files,
)
from tests.conftest import DemoServer


def test_the_sample_is_deterministic_and_every_plugin_has_content(tmp_path: Path) -> None:
    first = ensure_sample_marketplace(tmp_path / "one")
    assert ensure_sample_marketplace(tmp_path / "one") == first  # again: no new commit
    assert ensure_sample_marketplace(tmp_path / "two") == first  # elsewhere: the same id
    log = subprocess.run(
        ["git", "log", "--format=%H"], cwd=tmp_path / "one", capture_output=True, text=True
    )
    assert log.stdout.split() == [first]
    files = sample_files()
    listing = json.loads(files[".claude-plugin/marketplace.json"])
    assert [p["name"] for p in listing["plugins"]] == [GRANTED_PLUGIN, OTHER_PLUGIN]
    for plugin in listing["plugins"]:
        folder = plugin["source"].removeprefix("./")
        manifest = json.loads(files[f"{folder}/.claude-plugin/plugin.json"])
        assert manifest["name"] == plugin["name"]
        # Claude Code refuses empty component folders: each has a command and a skill.
        assert any(p.startswith(f"{folder}/commands/") and p.endswith(".md") for p in files)
        assert any(p.startswith(f"{folder}/skills/") and p.endswith("/SKILL.md") for p in files)


def names(demo: DemoServer, who: str) -> list[str]:
    with demo.client(who) as client:
        answer = client.get("/api/marketplace/info")
    assert answer.status_code == 200, answer.text
    return [p["name"] for p in answer.json()["plugins"]]


def test_the_demo_serves_its_marketplace_by_group(demo_server: DemoServer) -> None:
    services = demo_server.live.services
    marketplace = services.marketplaces.get(DEMO_MARKETPLACE)
    assert marketplace.last_sync_outcome == "ok", marketplace.last_sync_error
    plugins = {p.name for p in services.marketplaces.plugins(DEMO_MARKETPLACE)}
    assert plugins == {GRANTED_PLUGIN, OTHER_PLUGIN}
    assert names(demo_server, "analyst") == [GRANTED_PLUGIN]
    assert names(demo_server, "admin") == []  # Admin is not god-mode for plugins

    admin = services.users.by_email(f"admin@{services.settings.company_domain}")
    assert admin is not None
    group = services.groups.add("Support", "demo support team")
    grant = services.grants.add(
        group.id, ResourceType.MARKETPLACE_PLUGIN, f"{DEMO_MARKETPLACE}/{OTHER_PLUGIN}"
    )
    try:
        services.groups.add_member(group.id, admin.id)
        assert names(demo_server, "admin") == [OTHER_PLUGIN]  # their group's, no more
    finally:
        services.grants.delete(grant.id)
        services.groups.remove_member(group.id, admin.id)
    assert names(demo_server, "admin") == []


def test_a_second_prepare_changes_nothing(demo_server: DemoServer) -> None:
    services = demo_server.live.services
    before = services.marketplaces.get(DEMO_MARKETPLACE)
    analysts = services.groups.by_name(ANALYSTS)
    assert analysts is not None
    kind = ResourceType.MARKETPLACE_PLUGIN
    grants = services.grants.all(group_id=analysts.id, resource_type=kind)
    tokens = prepare(services)
    after = services.marketplaces.get(DEMO_MARKETPLACE)
    assert after.good_commit == before.good_commit and after.last_sync_at == before.last_sync_at
    assert services.grants.all(group_id=analysts.id, resource_type=kind) == grants
    assert [m.slug for m in services.marketplaces.all()] == [DEMO_MARKETPLACE]
    assert tokens.analyst == demo_server.analyst_token
