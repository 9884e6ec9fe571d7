"""The feed as a ZIP and its info, against a real server: deterministic bytes per grants,
ETag and 304, auth (Bearer or Basic; OAuth tokens and no token refused), revocation,
an admin without grants, and the on-disk cache (one build per key, LRU eviction)."""

from __future__ import annotations

import base64
import io
import json
import random
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agnes_mcp.marketplace.feed import build_feed
from agnes_mcp.marketplace.feed_cache import FeedBuilder
from agnes_mcp.marketplace.layout import MarketplaceLayout
from tests.conftest import LiveServer, add_user, running_server, token_for
from tests.marketplace_feed_harness import PluginSpec, git, grant, publish

TOOLS = [
    PluginSpec(
        "sql-review",
        {"commands/review.md": b"# Review SQL\n", "bin/check.sh": b"#!/bin/sh\necho ok\n"},
        executable=frozenset({"bin/check.sh"}),
        description="Reviews SQL before it runs.",
    ),
    PluginSpec("dashboards", {"skills/dash/SKILL.md": b"---\nname: dash\n---\n"}, version=None),
]
# Same plugin name in another marketplace: Claude Code shows both with their slug.
DATA = [PluginSpec("sql-review", {"agents/dba.md": b"You are a DBA.\n"}, version="2.1.0")]


@dataclass
class Feeds:
    live: LiveServer
    analyst: str  # Analysts: tools/sql-review, tools/dashboards, data/sql-review
    analyst2: str  # Analysts too
    reviewer: str  # Reviewers: tools/sql-review
    admin: str  # the bootstrap admin: Admin group, no plugin granted

    def get(self, path: str, token: str | None, **headers: str) -> httpx.Response:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        with httpx.Client(base_url=self.live.base_url, timeout=60) as client:
            return client.get(path, headers=headers)


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feeds]:
    with running_server(tmp_path_factory.mktemp("zip") / "data") as live:
        services = live.services
        publish(services, "tools", TOOLS)
        publish(services, "data", DATA)
        analysts = services.groups.add("Analysts").id
        reviewers = services.groups.add("Reviewers").id
        for grant_id in ("tools/sql-review", "tools/dashboards", "data/sql-review"):
            grant(services, analysts, grant_id)
        grant(services, reviewers, "tools/sql-review")
        analyst, analyst2, reviewer = (
            token_for(services, add_user(services, (group,)))
            for group in (analysts, analysts, reviewers)
        )
        yield Feeds(live, analyst, analyst2, reviewer, admin=live.admin_token)


def members(archive: bytes) -> dict[str, zipfile.ZipInfo]:
    return {info.filename: info for info in zipfile.ZipFile(io.BytesIO(archive)).infolist()}


def read_member(archive: bytes, name: str) -> bytes:
    return zipfile.ZipFile(io.BytesIO(archive)).read(name)


def test_the_zip_holds_the_granted_plugins_deterministically(feeds: Feeds) -> None:
    answer = feeds.get("/marketplace.zip", feeds.analyst)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"] == 'attachment; filename="agnes.zip"'
    assert answer.headers["cache-control"] == "private, no-cache"
    assert "last-modified" not in answer.headers
    found = members(answer.content)
    assert list(found) == sorted(found)
    assert list(found) == [
        ".claude-plugin/marketplace.json",
        "plugins/data-sql-review/.claude-plugin/plugin.json",
        "plugins/data-sql-review/agents/dba.md",
        "plugins/tools-dashboards/.claude-plugin/plugin.json",
        "plugins/tools-dashboards/skills/dash/SKILL.md",
        "plugins/tools-sql-review/.claude-plugin/plugin.json",
        "plugins/tools-sql-review/bin/check.sh",
        "plugins/tools-sql-review/commands/review.md",
    ]
    for info in found.values():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.create_system == 3
    assert found["plugins/tools-sql-review/bin/check.sh"].external_attr >> 16 == 0o100755
    assert found["plugins/tools-sql-review/commands/review.md"].external_attr >> 16 == 0o100644
    assert read_member(answer.content, "plugins/tools-sql-review/bin/check.sh") == (
        b"#!/bin/sh\necho ok\n"
    )
    document = json.loads(read_member(answer.content, ".claude-plugin/marketplace.json"))
    assert document["name"] == "agnes"
    assert [(p["name"], p["source"]) for p in document["plugins"]] == [
        ("data-sql-review", "./plugins/data-sql-review"),
        ("dashboards", "./plugins/tools-dashboards"),
        ("tools-sql-review", "./plugins/tools-sql-review"),
    ]
    info = feeds.get("/api/marketplace/info", feeds.analyst).json()
    assert answer.headers["etag"] == info["etag"] == f'"{info["key"]}"'


def test_same_grants_same_bytes_other_grants_other_bytes(feeds: Feeds) -> None:
    first = feeds.get("/marketplace.zip", feeds.analyst)
    again = feeds.get("/marketplace.zip", feeds.analyst)
    colleague = feeds.get("/marketplace.zip", feeds.analyst2)
    reviewer = feeds.get("/marketplace.zip", feeds.reviewer)
    assert first.content == again.content == colleague.content
    assert first.headers["etag"] == colleague.headers["etag"]
    assert reviewer.status_code == 200
    assert reviewer.content != first.content
    assert reviewer.headers["etag"] != first.headers["etag"]
    assert [n for n in members(reviewer.content) if n.endswith("plugin.json")] == [
        "plugins/tools-sql-review/.claude-plugin/plugin.json"
    ]


@pytest.mark.parametrize(
    "template", ["{etag}", "W/{etag}", '"other", {etag}', "*", 'W/"x",W/{etag}']
)
def test_a_matching_etag_gets_304(feeds: Feeds, template: str) -> None:
    etag = feeds.get("/marketplace.zip", feeds.analyst).headers["etag"]
    answer = feeds.get(
        "/marketplace.zip", feeds.analyst, **{"If-None-Match": template.format(etag=etag)}
    )
    assert answer.status_code == 304
    assert answer.content == b""
    assert answer.headers["etag"] == etag


def test_a_stale_etag_gets_the_archive(feeds: Feeds) -> None:
    answer = feeds.get("/marketplace.zip", feeds.analyst, **{"If-None-Match": '"0123abcd"'})
    assert answer.status_code == 200
    assert answer.content.startswith(b"PK")


def test_304_neither_builds_nor_reads_the_archive(feeds: Feeds) -> None:
    services = feeds.live.services
    group = services.groups.add("Dashboards only").id
    grant(services, group, "tools/dashboards")
    token = token_for(services, add_user(services, (group,)))
    info = feeds.get("/api/marketplace/info", token).json()
    built = services.marketplaces.layout.feed_zip(info["key"])
    assert not built.exists()
    answer = feeds.get("/marketplace.zip", token, **{"If-None-Match": info["etag"]})
    assert answer.status_code == 304
    assert not built.exists()
    assert feeds.get("/marketplace.zip", token).status_code == 200
    assert built.exists()


def test_basic_auth_takes_the_token_as_password_or_user(feeds: Feeds) -> None:
    expected = feeds.get("/marketplace.zip", feeds.analyst).content
    for pair in (f"anyone:{feeds.analyst}", f"{feeds.analyst}:"):
        basic = base64.b64encode(pair.encode()).decode()
        answer = feeds.get("/marketplace.zip", None, Authorization=f"Basic {basic}")
        assert answer.status_code == 200
        assert answer.content == expected


@pytest.mark.parametrize("path", ["/marketplace.zip", "/api/marketplace/info"])
def test_no_token_is_challenged_for_basic_and_bearer(feeds: Feeds, path: str) -> None:
    answer = feeds.get(path, None)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    challenges = answer.headers.get_list("www-authenticate")
    assert challenges[0] == 'Basic realm="Agnes marketplace"'
    assert challenges[1].startswith("Bearer ")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer agnesat_" + "x" * 43, "token_invalid"),
        ("Bearer agnes_not_a_token", "token_invalid"),
        ("Basic !!!", "unauthenticated"),
        ("Digest abc", "unauthenticated"),
    ],
)
def test_refused_credentials(feeds: Feeds, header: str, code: str) -> None:
    answer = feeds.get("/marketplace.zip", None, Authorization=header)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == code
    if "agnesat_" in header:
        assert "OAuth" in error["message"]
    assert "x" * 43 not in answer.text  # the token is not echoed
    assert answer.headers.get_list("www-authenticate")[0] == 'Basic realm="Agnes marketplace"'


def test_info_lists_the_callers_plugins(feeds: Feeds) -> None:
    answer = feeds.get("/api/marketplace/info", feeds.analyst)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "private, no-cache"
    info = answer.json()
    base = feeds.live.base_url
    assert set(info) == {"marketplace", "etag", "key", "git_url", "zip_url", "plugins"}
    assert info["marketplace"] == "agnes"
    assert info["git_url"] == f"{base}/marketplace.git"
    assert info["zip_url"] == f"{base}/marketplace.zip"
    assert info["plugins"] == [
        {
            "name": "data-sql-review",
            "plugin": "sql-review",
            "marketplace": "data",
            "grant_id": "data/sql-review",
            "version": "2.1.0",
            "description": None,
            "source": "./plugins/data-sql-review",
        },
        {
            "name": "dashboards",
            "plugin": "dashboards",
            "marketplace": "tools",
            "grant_id": "tools/dashboards",
            "version": None,
            "description": None,
            "source": "./plugins/tools-dashboards",
        },
        {
            "name": "tools-sql-review",
            "plugin": "sql-review",
            "marketplace": "tools",
            "grant_id": "tools/sql-review",
            "version": "1.0.0",
            "description": "Reviews SQL before it runs.",
            "source": "./plugins/tools-sql-review",
        },
    ]


def test_an_admin_without_grants_gets_an_empty_feed(feeds: Feeds) -> None:
    info = feeds.get("/api/marketplace/info", feeds.admin).json()
    assert info["plugins"] == []
    archive = feeds.get("/marketplace.zip", feeds.admin).content
    assert list(members(archive)) == [".claude-plugin/marketplace.json"]
    assert json.loads(read_member(archive, ".claude-plugin/marketplace.json"))["plugins"] == []


def test_a_revoked_grant_leaves_the_zip(feeds: Feeds) -> None:
    services = feeds.live.services
    group = services.groups.add("Revoked soon").id
    kept = grant(services, group, "tools/dashboards")
    revoked = grant(services, group, "data/sql-review")
    token = token_for(services, add_user(services, (group,)))
    before = feeds.get("/marketplace.zip", token)
    assert "plugins/data-sql-review/agents/dba.md" in members(before.content)
    services.grants.delete(revoked)
    after = feeds.get("/marketplace.zip", token, **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert not any(n.startswith("plugins/data-") for n in members(after.content))
    assert "plugins/tools-dashboards/skills/dash/SKILL.md" in members(after.content)
    assert kept


# --- the cache, driven directly --------------------------------------------------------


def test_concurrent_first_requests_build_once_and_old_feeds_are_evicted(
    feeds: Feeds, tmp_path: Path
) -> None:
    services = feeds.live.services
    plugins = {p.grant_id: p for p in services.marketplaces.plugins()}
    layout = MarketplaceLayout(tmp_path / "marketplaces")
    layout.plugins_dir.mkdir(parents=True)
    for plugin in plugins.values():  # the same stored files, another cache folder
        source = services.marketplaces.layout.plugin_files(plugin.content_hash)
        shutil.copytree(source, layout.plugin_files(plugin.content_hash))
    settings = services.settings
    one, two, three = (
        build_feed(settings, [plugins[g] for g in ids])
        for ids in (["tools/sql-review"], ["tools/dashboards"], ["data/sql-review"])
    )
    builder = FeedBuilder(layout, max_entries=2, git_timeout=60)
    paths: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            paths.append(builder.ensure_repo(one))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(paths) == {layout.feed_repo(one.key)}
    first_commit = head_commit(layout.feed_repo(one.key))
    first_zip = builder.ensure_zip(one).read_bytes()
    served = feeds.get("/marketplace.zip", feeds.reviewer)  # the server's own build
    assert served.headers["etag"] == one.etag and served.content == first_zip
    with builder.lease(two.key):
        builder.ensure_zip(two)
        builder.ensure_zip(three)  # three feeds, room for two: 'one' is the oldest
        assert not layout.feed_repo(one.key).exists()
        assert not layout.feed_zip(one.key).exists()
        assert layout.feed_zip(two.key).exists() and layout.feed_zip(three.key).exists()
        rebuilt = builder.ensure_zip(one)  # 'two' is older but leased: 'three' goes
        assert layout.feed_zip(two.key).exists()
        assert not layout.feed_zip(three.key).exists()
    assert sorted(p.name for p in layout.feeds_dir.iterdir()) == sorted(
        [f"{one.key}.zip", f"{two.key}.zip"]
    )
    assert rebuilt.read_bytes() == first_zip  # built again: the same bytes
    assert head_commit(builder.ensure_repo(one)) == first_commit  # and the same commit


def head_commit(repository: Path) -> str:
    done = git("--git-dir", str(repository), "rev-parse", "refs/heads/main")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_feed_whose_plugin_a_sync_replaced_is_refused_as_changed(tmp_path: Path) -> None:
    """A feed computed before a sync replaced (and collected) one of its plugins cannot be
    built: a typed 503 the routes answer by computing the feed again, never a 500."""
    from agnes_mcp.errors import MarketplaceFeedChanged
    from agnes_mcp.services import Services
    from tests.conftest import make_settings

    services = Services.open(make_settings(tmp_path / "data"))
    try:
        [old] = publish(services, "tools", [PluginSpec("sql-review", {"a.md": b"old"})])
        stale = build_feed(services.settings, [old])
        publish(services, "tools", [PluginSpec("sql-review", {"a.md": b"new"})])
        shutil.rmtree(services.marketplaces.layout.plugin_files(old.content_hash))
        builder = FeedBuilder(services.marketplaces.layout, max_entries=4, git_timeout=60)
        with pytest.raises(MarketplaceFeedChanged) as refused:
            builder.ensure_zip(stale)
        assert refused.value.status == 503 and "sql-review" in refused.value.message
        fresh = build_feed(services.settings, services.marketplaces.plugins())
        with zipfile.ZipFile(builder.ensure_zip(fresh)) as archive:
            assert archive.read("plugins/tools-sql-review/a.md") == b"new"
    finally:
        services.close()


def test_no_two_plugins_share_a_folder_or_a_name(feeds: Feeds) -> None:
    """'<slug>-<name>' alone is ambiguous ('a' + 'b-c' and 'a-b' + 'c'; a clash-renamed
    'a-b-c' and a plugin named 'a-b-c'): every plugin still gets a folder and a name of
    its own, holding its own files only."""
    services = feeds.live.services
    for slug, name in (("a", "b-c"), ("a-b", "c"), ("q", "b-c"), ("z", "a-b-c")):
        publish(services, slug, [PluginSpec(name, {f"commands/{slug}.md": slug.encode()})])
    group = services.groups.add("Look-alikes").id
    for grant_id in ("a/b-c", "a-b/c", "q/b-c", "z/a-b-c"):
        grant(services, group, grant_id)
    token = token_for(services, add_user(services, (group,)))
    archive = feeds.get("/marketplace.zip", token).content
    names = [i.filename for i in zipfile.ZipFile(io.BytesIO(archive)).infolist()]
    assert len(names) == len(set(names))  # no member twice
    entries = json.loads(read_member(archive, ".claude-plugin/marketplace.json"))["plugins"]
    assert len({e["name"] for e in entries}) == len({e["source"] for e in entries}) == 4
    info = feeds.get("/api/marketplace/info", token).json()["plugins"]
    for plugin in info:
        folder = plugin["source"].removeprefix("./")
        held = sorted(n.removeprefix(folder + "/") for n in names if n.startswith(folder + "/"))
        slug = plugin["marketplace"]
        assert held == [".claude-plugin/plugin.json", f"commands/{slug}.md"], (plugin, held)
        manifest = json.loads(read_member(archive, f"{folder}/.claude-plugin/plugin.json"))
        assert manifest["name"] == plugin["plugin"]


@pytest.mark.parametrize("pair", ["anyone:agnes_wrong", "anyone:agnes_0000000000_" + "0" * 43])
def test_a_wrong_password_is_refused_in_words_that_fit_basic_auth(feeds: Feeds, pair: str) -> None:
    """A git user's wrong password read "The bearer token is not ..." (no bearer sent)."""
    basic = base64.b64encode(pair.encode()).decode()
    answer = feeds.get("/marketplace.zip", None, Authorization=f"Basic {basic}")
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "token_invalid"
    assert "token is not" in error["message"] and "bearer" not in error["message"].lower()


def test_the_feed_cache_keeps_to_its_byte_budget(tmp_path: Path) -> None:
    """Each distinct set of granted plugins is a full copy on disk: a count of entries
    alone let 200 copies of the largest feed pile up. Past the byte budget the least
    recently used go (never the one just built, nor one being served)."""
    from agnes_mcp.services import Services
    from tests.conftest import make_settings

    services = Services.open(make_settings(tmp_path / "data"))
    try:
        blob = random.Random(7).randbytes(1024 * 1024)  # does not compress
        heavy = {"skills/data/blob.bin": blob}
        plugins = publish(
            services,
            "tools",
            [PluginSpec(name, {**heavy, f"commands/{name}.md": name.encode()}) for name in "abc"],
        )
        one, two, three = (build_feed(services.settings, [p]) for p in plugins)
        layout = services.marketplaces.layout

        def used() -> int:
            return sum(f.stat().st_size for f in layout.feeds_dir.rglob("*") if f.is_file())

        unbounded = FeedBuilder(layout, max_entries=100, git_timeout=60)
        unbounded.ensure_zip(one)
        unbounded.ensure_repo(one)
        per_feed = used()
        assert per_feed > 1024 * 1024
        shutil.rmtree(layout.feeds_dir)

        builder = FeedBuilder(layout, max_entries=100, git_timeout=60, max_bytes=per_feed * 2)
        for feed in (one, two):
            builder.ensure_zip(feed)
            builder.ensure_repo(feed)
        assert used() <= per_feed * 2 + 64 * 1024
        with builder.lease(one.key):  # 'one' is the oldest, but being served
            builder.ensure_zip(three)
            builder.ensure_repo(three)
            assert layout.feed_zip(one.key).exists()
            assert not layout.feed_zip(two.key).exists()
            assert not layout.feed_repo(two.key).exists()
        assert layout.feed_repo(three.key).exists()
        assert used() <= per_feed * 2 + 64 * 1024
    finally:
        services.close()
