"""Syncing upstream marketplace repositories with the real git binary: local paths, refs,
new commits, a private repository over HTTP with a token, and fetches that fail."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.errors import MarketplaceTokenEnvRefused
from agnes_mcp.marketplace.feed import build_feed
from agnes_mcp.services import Services
from agnes_mcp.settings import load_settings
from agnes_mcp.store.marketplaces import Marketplace
from tests.git_upstream import GitHttpServer, UpstreamRepo, sample_marketplace, serving


def open_services(data_dir: Path, **marketplace: object) -> Services:
    settings = load_settings(
        data_dir=data_dir,
        write_behind_seconds=0.05,
        scheduler_enabled=False,
        marketplace={"allow_local": True, "token_envs": ["PLUGINS_READ_TOKEN"], **marketplace},
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
    return UpstreamRepo(tmp_path / "upstream" / "plugins")


def add_and_sync(services: Services, url: str, slug: str = "team", **fields: object) -> Marketplace:
    services.marketplaces.add(slug, url, added_by="admin@example.com", sync=False, **fields)  # type: ignore[arg-type]
    return services.marketplaces.sync_now(slug)


def served_files(services: Services, content_hash: str) -> dict[str, tuple[bytes, int]]:
    root = services.marketplaces.layout.plugin_files(content_hash)
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mirror_ref(services: Services, slug: str, ref: str) -> str:
    mirror = services.marketplaces.layout.mirror(slug)
    return subprocess.run(
        ["git", "--git-dir", str(mirror), "rev-parse", ref], capture_output=True, text=True
    ).stdout.strip()


# --- a local repository ------------------------------------------------------------------


def test_a_local_repository_syncs_its_plugins_rows_and_files(
    services: Services, upstream: UpstreamRepo
) -> None:
    upstream.write("LICENSE", "MIT\n")
    upstream.symlink("plugins/notes/LICENSE", "../../LICENSE")
    commit = sample_marketplace(upstream)

    synced = add_and_sync(services, str(upstream.path))

    assert (synced.last_sync_outcome, synced.good_commit) == ("ok", commit)
    assert synced.upstream_name == "team-tools" and synced.last_sync_error is None
    plugins = {p.name: p for p in services.marketplaces.plugins("team")}
    assert sorted(plugins) == ["notes", "sql-review"]
    review, notes = plugins["sql-review"], plugins["notes"]
    assert (review.version, review.description, review.source_path) == (
        "1.0.0",
        "Entry text.",  # the entry's description wins over plugin.json's, as served
        "plugins/sql-review",
    )
    assert review.entry == {"category": "data", "description": "Entry text."}
    served = build_feed(services.settings, [review]).entries[0].marketplace_entry()
    assert (served["description"], served["version"]) == (review.description, review.version)
    assert review.manifest["name"] == "sql-review" and review.grant_id == "team/sql-review"
    assert (notes.version, notes.description) == ("0.2.0", "Notes from the entry.")
    files = served_files(services, review.content_hash)
    assert files == {
        ".claude-plugin/plugin.json": (
            (upstream.path / "plugins/sql-review/.claude-plugin/plugin.json").read_bytes(),
            0o644,
        ),
        "commands/review.md": (b"# Review\nCheck the query.\n", 0o644),
        "scripts/run.sh": (b"#!/bin/sh\necho review\n", 0o755),
    }
    assert review.files == 3 and review.bytes == sum(len(b) for b, _ in files.values())
    # A link to a file elsewhere in the repository is served as a copy of that file.
    assert served_files(services, notes.content_hash)["LICENSE"] == (b"MIT\n", 0o644)
    assert not (
        services.marketplaces.layout.plugin_files(notes.content_hash) / "LICENSE"
    ).is_symlink()


def test_the_mirror_is_bare_and_remembers_no_url(
    services: Services, upstream: UpstreamRepo
) -> None:
    sample_marketplace(upstream)
    add_and_sync(services, str(upstream.path))
    mirror = services.marketplaces.layout.mirror("team")
    config = (mirror / "config").read_text()
    assert "bare = true" in config and "[remote" not in config
    assert str(upstream.path) not in config
    assert not (mirror / "FETCH_HEAD").exists()
    written = [p for p in mirror.rglob("*") if p.is_file()]
    assert written and not [p for p in written if str(upstream.path).encode() in p.read_bytes()]
    assert not (mirror.parent / "repo").exists()  # no working tree anywhere


def test_plugin_root_and_a_plugin_at_the_repository_root(
    services: Services, tmp_path: Path
) -> None:
    nested = UpstreamRepo(tmp_path / "nested")
    nested.write_plugin("packages/sql-review", "sql-review")
    nested.write_marketplace(
        [{"name": "sql-review", "source": "sql-review"}], metadata={"pluginRoot": "./packages"}
    )
    nested.commit()
    single = UpstreamRepo(tmp_path / "single")
    single.write_plugin(".", "solo", files={"skills/solo/SKILL.md": "---\nname: solo\n---\n"})
    single.write_marketplace([{"name": "solo", "source": "./"}])
    single.commit()

    add_and_sync(services, str(nested.path), slug="nested")
    add_and_sync(services, str(single.path), slug="single")

    [review] = services.marketplaces.plugins("nested")
    assert review.source_path == "packages/sql-review"
    [solo] = services.marketplaces.plugins("single")
    assert solo.source_path == ""
    assert set(served_files(services, solo.content_hash)) == {
        ".claude-plugin/plugin.json",
        ".claude-plugin/marketplace.json",
        "skills/solo/SKILL.md",
    }


def test_the_same_plugin_in_two_marketplaces_is_stored_once(
    services: Services, upstream: UpstreamRepo
) -> None:
    sample_marketplace(upstream)
    add_and_sync(services, str(upstream.path), slug="one")
    add_and_sync(services, str(upstream.path), slug="two")
    hashes = {
        p.marketplace: p.content_hash for p in services.marketplaces.plugins() if p.name == "notes"
    }
    assert hashes["one"] == hashes["two"]
    assert len(list(services.marketplaces.layout.plugins_dir.iterdir())) == 2


# --- refs ---------------------------------------------------------------------------------


@pytest.fixture
def versioned(upstream: UpstreamRepo) -> dict[str, str]:
    """main at 2.0.0; branch 'stable', tags 'v1' (annotated) and 'v1-light' at 1.0.0."""
    upstream.write_plugin("plugins/notes", "notes", version="1.0.0")
    upstream.write_marketplace([{"name": "notes", "source": "./plugins/notes"}])
    first = upstream.commit("1.0.0")
    upstream.tag("v1")
    upstream.tag("v1-light", annotated=False)
    upstream.branch("stable")
    upstream.write_plugin("plugins/notes", "notes", version="2.0.0")
    second = upstream.commit("2.0.0")
    return {"first": first, "second": second}


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        (None, "2.0.0"),
        ("main", "2.0.0"),
        ("stable", "1.0.0"),
        ("v1", "1.0.0"),
        ("v1-light", "1.0.0"),
        ("first", "1.0.0"),  # the full SHA of the first commit
        ("HEAD", "2.0.0"),  # the default branch, as git names it
        ("refs/heads/stable", "1.0.0"),  # full ref names, as git prints them
        ("refs/tags/v1", "1.0.0"),
    ],
)
def test_a_branch_tag_or_full_sha_picks_the_commit(
    services: Services,
    upstream: UpstreamRepo,
    versioned: dict[str, str],
    ref: str | None,
    version: str,
) -> None:
    pinned = versioned.get(ref or "", ref)
    synced = add_and_sync(services, str(upstream.path), ref=pinned)
    assert synced.last_sync_outcome == "ok", synced.last_sync_error
    assert synced.good_commit == (versioned["first"] if version == "1.0.0" else versioned["second"])
    [notes] = services.marketplaces.plugins("team")
    assert notes.version == version


@pytest.mark.parametrize("ref", ["no-such-branch", "0" * 40])
def test_an_unknown_ref_fails_naming_it(
    services: Services, upstream: UpstreamRepo, versioned: dict[str, str], ref: str
) -> None:
    synced = add_and_sync(services, str(upstream.path), ref=ref)
    assert synced.last_sync_outcome == "failed" and synced.good_commit is None
    assert f"no branch, tag or commit '{ref}'" in (synced.last_sync_error or "")


def test_a_new_upstream_commit_is_picked_up_and_the_old_files_collected(
    services: Services, upstream: UpstreamRepo
) -> None:
    sample_marketplace(upstream)
    add_and_sync(services, str(upstream.path))
    before = {p.name: p.content_hash for p in services.marketplaces.plugins("team")}

    upstream.write_plugin("plugins/notes", "notes", version="0.3.0")
    upstream.write("plugins/notes/commands/new.md", "# New\n")
    commit = upstream.commit("notes 0.3.0")
    synced = services.marketplaces.sync_now("team")

    assert synced.good_commit == commit
    after = {p.name: p for p in services.marketplaces.plugins("team")}
    assert after["notes"].version == "0.3.0" and after["notes"].content_hash != before["notes"]
    assert after["sql-review"].content_hash == before["sql-review"]
    assert "commands/new.md" in served_files(services, after["notes"].content_hash)
    layout = services.marketplaces.layout
    assert not layout.plugin_files(before["notes"]).exists()  # nothing serves it any more
    assert mirror_ref(services, "team", "refs/agnes/HEAD") == commit


def test_an_unreachable_upstream_keeps_the_last_good_sync(
    services: Services, upstream: UpstreamRepo
) -> None:
    good = sample_marketplace(upstream)
    add_and_sync(services, str(upstream.path))
    before = services.marketplaces.plugins("team")
    upstream.path.rename(upstream.path.with_name("moved"))

    failed = services.marketplaces.sync_now("team")

    assert failed.last_sync_outcome == "failed" and failed.good_commit == good
    assert "no repository" in (failed.last_sync_error or "").lower()
    assert services.marketplaces.plugins("team") == before
    assert all(services.marketplaces.layout.plugin_files(p.content_hash).is_dir() for p in before)


# --- a private repository over HTTP -------------------------------------------------------


@pytest.fixture
def token() -> str:
    return f"tok-{secrets.token_hex(16)}"


@pytest.fixture
def private(tmp_path: Path, upstream: UpstreamRepo, token: str) -> Iterator[GitHttpServer]:
    sample_marketplace(upstream)
    with serving(upstream.path.parent, password=token) as server:
        yield server


def test_a_private_upstream_syncs_with_a_token_that_is_never_written_down(
    tmp_path: Path,
    private: GitHttpServer,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PLUGINS_READ_TOKEN", token)
    data_dir = tmp_path / "data"
    services = open_services(data_dir)
    try:
        synced = add_and_sync(services, private.url("plugins"), token_env="PLUGINS_READ_TOKEN")
        assert synced.last_sync_outcome == "ok", synced.last_sync_error
        assert len(services.marketplaces.plugins("team")) == 2
        assert private.authorized_users and set(private.authorized_users) == {"x-access-token"}
        with services.store.cursor() as cur:
            cur.execute("CHECKPOINT")
        rows = repr(services.marketplaces.all()) + repr(services.marketplaces.plugins())
    finally:
        services.close()

    secrets_forms = [token.encode(), base64.b64encode(f"x-access-token:{token}".encode())]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert token not in logged and token not in rows
    found = [
        path
        for path in data_dir.rglob("*")
        if path.is_file() and any(form in path.read_bytes() for form in secrets_forms)
    ]
    assert found == []
    assert (data_dir / "state" / "system.duckdb").stat().st_size > 0
    mirror_config = (data_dir / "marketplaces" / "team" / "repo.git" / "config").read_text()
    assert "credential" not in mirror_config and "PLUGINS_READ_TOKEN" not in mirror_config


def test_a_user_name_for_the_token_is_sent(
    services: Services, private: GitHttpServer, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGINS_READ_TOKEN", token)
    synced = add_and_sync(
        services, private.url("plugins"), token_env="PLUGINS_READ_TOKEN", username="reader"
    )
    assert synced.last_sync_outcome == "ok" and set(private.authorized_users) == {"reader"}


def test_a_wrong_or_missing_token_fails_naming_the_variable_and_keeps_the_last_good(
    services: Services,
    private: GitHttpServer,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PLUGINS_READ_TOKEN", token)
    good = add_and_sync(services, private.url("plugins"), token_env="PLUGINS_READ_TOKEN")
    before = services.marketplaces.plugins("team")
    wrong = f"wrong-{secrets.token_hex(8)}"
    monkeypatch.setenv("PLUGINS_READ_TOKEN", wrong)
    caplog.set_level(logging.DEBUG)

    refused = services.marketplaces.sync_now("team")

    assert refused.last_sync_outcome == "failed" and refused.good_commit == good.good_commit
    assert "refused the token in $PLUGINS_READ_TOKEN" in (refused.last_sync_error or "")
    assert wrong not in (refused.last_sync_error or "") and private.refused_auth >= 1
    assert wrong not in caplog.text and token not in caplog.text
    assert services.marketplaces.plugins("team") == before

    monkeypatch.delenv("PLUGINS_READ_TOKEN")
    missing = services.marketplaces.sync_now("team")
    assert missing.last_sync_outcome == "failed"
    assert "PLUGINS_READ_TOKEN" in (missing.last_sync_error or "")
    assert "not set" in (missing.last_sync_error or "")
    assert services.marketplaces.plugins("team") == before


def test_a_private_upstream_without_a_token_says_it_needs_one(
    services: Services, private: GitHttpServer
) -> None:
    failed = add_and_sync(services, private.url("plugins"))
    assert failed.last_sync_outcome == "failed"
    assert "needs a token" in (failed.last_sync_error or "")
    assert "--token-env" in (failed.last_sync_error or "")


# --- fetches that fail --------------------------------------------------------------------


@pytest.fixture
def public(upstream: UpstreamRepo) -> Iterator[GitHttpServer]:
    sample_marketplace(upstream)
    with serving(upstream.path.parent) as server:
        yield server


def test_a_fetch_cut_halfway_through_the_pack_keeps_everything_and_the_next_sync_works(
    services: Services, upstream: UpstreamRepo, public: GitHttpServer
) -> None:
    good = add_and_sync(services, public.url("plugins"))
    before = services.marketplaces.plugins("team")
    files_before = {p.name: served_files(services, p.content_hash) for p in before}
    upstream.write("plugins/notes/data/blob.bin", os.urandom(300_000))
    newer = upstream.commit("a large file")
    public.drop_pack_after = 4_000

    cut = services.marketplaces.sync_now("team")

    assert cut.last_sync_outcome == "failed" and cut.good_commit == good.good_commit
    assert "network" in (cut.last_sync_error or "").lower()
    assert services.marketplaces.plugins("team") == before
    assert {p.name: served_files(services, p.content_hash) for p in before} == files_before
    assert mirror_ref(services, "team", "refs/agnes/HEAD") == good.good_commit

    public.drop_pack_after = None
    again = services.marketplaces.sync_now("team")
    assert again.last_sync_outcome == "ok" and again.good_commit == newer
    notes = next(p for p in services.marketplaces.plugins("team") if p.name == "notes")
    assert notes.bytes > 300_000


def test_a_fetch_over_the_time_limit_is_stopped(
    tmp_path: Path, upstream: UpstreamRepo, public: GitHttpServer
) -> None:
    services = open_services(tmp_path / "slow", git_timeout_seconds=1)
    try:
        public.gate.clear()  # the server holds every request
        failed = add_and_sync(services, public.url("plugins"))
        assert public.at_gate.is_set()
    finally:
        public.gate.set()
        services.close()
    assert failed.last_sync_outcome == "failed"
    assert "took longer than 1 seconds" in (failed.last_sync_error or "")


def test_a_redirect_is_not_followed_so_it_cannot_lead_past_the_url_rules(
    services: Services, upstream: UpstreamRepo, public: GitHttpServer, tmp_path: Path
) -> None:
    with serving(tmp_path / "elsewhere") as front:
        front.redirect_to = f"http://127.0.0.1:{public.port}"
        failed = add_and_sync(services, front.url("plugins"))
    assert front.requests >= 1
    assert public.requests == 0  # git never went where the redirect pointed
    assert failed.last_sync_outcome == "failed" and failed.good_commit is None
    assert "redirect" in (failed.last_sync_error or "")


def stand_in_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """This process's look-ups of the names in ``answers`` get those addresses (the
    network is off: no DNS server to rebind); every name asked is recorded."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host: str, port: object, *args: object, **kwargs: object) -> list:
        asked.append(host)
        if host not in answers:
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        if not answers[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 443)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return asked


def test_git_connects_only_to_the_addresses_the_check_saw(
    services: Services, public: GitHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL rules judged the addresses a name resolved to, then git resolved the name
    again itself: a name could answer the check one address and git another (DNS
    rebinding: past the rules into the server's own network, or, under allow_local, a
    plain http:// fetch sent with its token to a public host). git's own resolver cannot
    resolve this name at all: the fetch works only if git uses the checked address."""
    asked = stand_in_resolver(monkeypatch, {"plugins.rebind.test": ["127.0.0.1"]})
    url = f"http://plugins.rebind.test:{public.port}/plugins"

    synced = add_and_sync(services, url)

    assert synced.last_sync_outcome == "ok", synced.last_sync_error
    assert public.requests >= 1 and len(services.marketplaces.plugins("team")) == 2
    assert asked.count("plugins.rebind.test") >= 2  # at the add, and again at the fetch


def test_a_name_that_no_longer_resolves_is_not_left_to_git(
    services: Services, public: GitHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown at the fetch, the name could resolve to anything by the time git asked."""
    answers = {"plugins.rebind.test": ["127.0.0.1"]}
    stand_in_resolver(monkeypatch, answers)
    url = f"http://plugins.rebind.test:{public.port}/plugins"
    assert add_and_sync(services, url).last_sync_outcome == "ok"
    answers["plugins.rebind.test"] = []
    before = public.requests

    failed = services.marketplaces.sync_now("team")

    assert failed.last_sync_outcome == "failed" and failed.good_commit is not None
    assert "Could not resolve host plugins.rebind.test" in (failed.last_sync_error or "")
    assert public.requests == before


def test_only_variables_the_operator_listed_are_ever_sent(
    tmp_path: Path, private: GitHttpServer, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin named any server variable as a marketplace's token (the OIDC client
    secret, a warehouse token) and git sent its value to the host the admin chose. Only
    the variables in marketplace.token_envs are taken: at registration, and at every
    fetch (a registration older than the list)."""
    monkeypatch.setenv("AGNES_OIDC_CLIENT_SECRET", token)  # what an admin should not get
    services = open_services(tmp_path / "data")
    try:
        with pytest.raises(MarketplaceTokenEnvRefused) as refused:
            services.marketplaces.add(
                "steal",
                private.url("plugins"),
                added_by="admin@example.com",
                token_env="AGNES_OIDC_CLIENT_SECRET",
            )
        assert "marketplace.token_envs" in refused.value.message
        assert refused.value.details["fields"][0]["field"] == "token_env"
        assert token not in refused.value.message + str(refused.value.hint)
        services.marketplace_store.add(  # registered when the list still held it
            "old",
            "Old",
            private.url("plugins"),
            ref=None,
            token_env="AGNES_OIDC_CLIENT_SECRET",
            username=None,
            added_by="admin@example.com",
        )
        failed = services.marketplaces.sync_now("old")
    finally:
        services.close()
    assert failed.last_sync_outcome == "failed"
    assert "marketplace.token_envs" in (failed.last_sync_error or "")
    assert private.authorized_users == []  # nothing was sent
