"""The analyst side of the plugin marketplace against the demo server: ``agnes init``
registers the feed (Claude Code settings, git credential; the token in neither),
``agnes marketplace refresh`` keeps a clone that follows the grants, ``agnes
marketplace info`` lists them, and a server without the marketplace is said plainly."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from agnes_mcp.resource_types import ResourceType
from agnes_sync.git_credentials import register, store_path
from agnes_sync.workspace.claude_files import KnownMarketplace, write_settings
from cli import exit_codes
from cli.main import main
from tests.conftest import DemoServer, add_user, token_for

GRANTED = "agnes-analyst"  # the sample plugin granted to the demo's Analysts
OTHER = "support-insights"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
MINE = {"mine": {"source": {"source": "github", "repo": "me/my-plugins"}}}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def init(capsys: pytest.CaptureFixture[str], base: str, token: str, folder: Path) -> dict[str, Any]:
    code, summary = cli(
        capsys, "init", "--server-url", base, "--token", token, "--workspace", str(folder),
        "--no-pull",
    )  # fmt: skip
    assert code == exit_codes.OK, summary
    return summary


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def global_git_config() -> Path:
    return Path(os.environ["GIT_CONFIG_GLOBAL"])


def plain_git(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """The user's git as Claude Code runs it: their global config, no token given."""
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def listed(clone: Path) -> list[str]:
    document = json.loads((clone / ".claude-plugin" / "marketplace.json").read_text())
    return sorted(p["name"] for p in document["plugins"])


# --- without a server --------------------------------------------------------------


def test_settings_keep_the_users_marketplaces_and_follow_a_rename(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    path = tmp_path / ".claude" / "settings.json"
    path.write_text(json.dumps({"extraKnownMarketplaces": MINE, "model": "opus"}))
    ours = KnownMarketplace("agnes", "https://agnes.example.com/marketplace.git")
    assert write_settings(tmp_path, "agnes", ours)
    data = json.loads(path.read_text())
    assert data["model"] == "opus"
    assert data["extraKnownMarketplaces"] == {
        **MINE,
        "agnes": {"source": {"source": "git", "url": ours.git_url}},
    }
    assert not write_settings(tmp_path, "agnes", ours)  # again: nothing to write
    # The server's marketplace renamed: the old entry for the same URL goes.
    assert write_settings(tmp_path, "agnes", KnownMarketplace("acme", ours.git_url))
    assert set(json.loads(path.read_text())["extraKnownMarketplaces"]) == {"mine", "acme"}


def test_git_credential_is_one_entry_per_server_and_a_new_token_replaces_it() -> None:
    first = register("http://127.0.0.1:8999", "agnes_first_token")
    assert first.changed and first.config == str(global_git_config())
    config_text = global_git_config().read_text()
    again = register("http://127.0.0.1:8999", "agnes_second_token")
    assert not again.changed and global_git_config().read_text() == config_text
    values = plain_git("config", "--global", "--get-all", first.config_key).stdout
    assert values.splitlines() == ["", first.helper]  # the reset, then our store
    assert "token" not in config_text
    assert stat.S_IMODE(store_path().stat().st_mode) == 0o600
    stored = store_path().read_text()
    assert "agnes_second_token" in stored and "agnes_first_token" not in stored
    asked = subprocess.run(
        ["git", "credential", "fill"],
        input="url=http://127.0.0.1:8999/marketplace.git\n\n",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    assert "password=agnes_second_token" in asked.stdout
    elsewhere = subprocess.run(
        ["git", "credential", "fill"],
        input="url=http://127.0.0.1:8998/marketplace.git\n\n",
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    assert elsewhere.returncode != 0  # another server (port) never gets the token


@pytest.fixture(autouse=True)
def claude_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Claude Code's config folder of this test's own: the real ~/.claude is never read."""
    home = tmp_path / "claude-config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    return home


# --- against the demo server ---------------------------------------------------------


def test_init_registers_the_feed_and_git_clones_it_with_no_token_given(
    demo_server: DemoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, token = demo_server.live.base_url, demo_server.analyst_token
    folder = tmp_path / "ws"
    (folder / ".claude").mkdir(parents=True)
    (folder / ".claude" / "settings.json").write_text(json.dumps({"extraKnownMarketplaces": MINE}))
    summary = init(capsys, base, token, folder)
    git_url = f"{base}/marketplace.git"
    assert summary["marketplace"]["git_url"] == git_url
    assert [p["name"] for p in summary["marketplace"]["plugins"]] == [GRANTED]
    settings = json.loads((folder / ".claude" / "settings.json").read_text())
    assert settings["extraKnownMarketplaces"] == {
        **MINE,
        "agnes": {"source": {"source": "git", "url": git_url}},
    }
    written = files_under(folder)
    assert written and not any(token.encode() in data for data in written.values())
    assert token not in global_git_config().read_text()
    credential = summary["git_credential"]
    assert credential["config_changed"] and credential["scope"] == base
    assert credential["config"] == str(global_git_config()) and credential["error"] is None

    # What Claude Code does: a plain clone of the URL in the settings, no token given.
    clone = plain_git("clone", "--quiet", git_url, str(tmp_path / "claude-copy"))
    assert clone.returncode == 0, clone.stderr
    assert listed(tmp_path / "claude-copy") == [GRANTED]
    assert token not in (tmp_path / "claude-copy" / ".git" / "config").read_text()
    # ...and it is the credential that lets it in: without the global config, refused.
    refused = plain_git("clone", git_url, str(tmp_path / "no-config"), GIT_CONFIG_GLOBAL=os.devnull)
    assert refused.returncode != 0 and not (tmp_path / "no-config").exists()

    # Again: nothing changes, in the workspace or in the git config.
    config_text = global_git_config().read_text()
    again = init(capsys, base, token, folder)
    assert again["written"] == [] and again["git_credential"]["config_changed"] is False
    assert files_under(folder) == written and global_git_config().read_text() == config_text


@pytest.fixture
def own_group(demo_server: DemoServer) -> Iterator[tuple[str, str]]:
    """(group id, token) of a user alone in a group of their own, granted GRANTED."""
    services = demo_server.live.services
    group = services.groups.add(f"plugin-users-{time.monotonic_ns()}", "marketplace test")
    user = add_user(services, (group.id,))
    services.grants.add(group.id, ResourceType.MARKETPLACE_PLUGIN, f"demo/{GRANTED}")
    yield group.id, token_for(services, user)
    for grant in services.grants.all(group_id=group.id):
        services.grants.delete(grant.id)


def test_refresh_follows_the_grants(
    demo_server: DemoServer,
    own_group: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = demo_server.live.services
    group_id, token = own_group
    folder = tmp_path / "ws"
    init(capsys, demo_server.live.base_url, token, folder)
    refresh = ("marketplace", "refresh", "--workspace", str(folder))  # the workspace's token
    code, first = cli(capsys, *refresh)
    assert code == exit_codes.OK, first
    assert first["cloned"] and first["plugins"] == [GRANTED] and first["added"] == [GRANTED]
    clone = folder / ".agnes" / "marketplace"
    assert listed(clone) == [GRANTED] and (clone / "plugins" / f"demo-{GRANTED}").is_dir()
    assert first["commit"] == plain_git("rev-parse", "HEAD", cwd=clone).stdout.strip()

    grant = services.grants.add(group_id, ResourceType.MARKETPLACE_PLUGIN, f"demo/{OTHER}")
    code, second = cli(capsys, *refresh)
    assert not second["cloned"] and second["added"] == [OTHER] and second["removed"] == []
    assert listed(clone) == [GRANTED, OTHER] and second["commit"] != first["commit"]

    services.grants.delete(grant.id)  # revoked: gone at the next refresh
    code, third = cli(capsys, *refresh)
    assert third["removed"] == [OTHER] and third["plugins"] == [GRANTED]
    assert listed(clone) == [GRANTED] and not (clone / "plugins" / f"demo-{OTHER}").exists()
    assert third["commit"] == first["commit"]  # the same grants, the same feed

    code, fourth = cli(capsys, *refresh)
    assert (fourth["added"], fourth["removed"], fourth["commit"]) == ([], [], first["commit"])
    assert not any(token.encode() in data for data in files_under(folder).values())

    capsys.readouterr()
    assert main([*refresh]) == exit_codes.OK
    said = capsys.readouterr().out
    assert "no plugin came or went" in said and "Claude Code: marketplace not added" in said


def known_marketplace(git_url: str, location: Path, name: str = "agnes") -> None:
    """Claude Code's plugins/known_marketplaces.json, naming where its clone of ``name`` is."""
    plugins = Path(os.environ["CLAUDE_CONFIG_DIR"]) / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    entry = {
        "source": {"source": "git", "url": git_url},
        "installLocation": str(location),
        "lastUpdated": "2026-01-01T00:00:00.000Z",
    }
    (plugins / "known_marketplaces.json").write_text(json.dumps({name: entry}))


def claude_clone_of(git_url: str, folder: Path) -> Path:
    """Add the feed to Claude Code the way it does: a plain clone with the user's git (the
    credential agnes init registered; no token given), and its entry."""
    done = plain_git("clone", "--quiet", git_url, str(folder))
    assert done.returncode == 0, done.stderr
    known_marketplace(git_url, folder)
    return folder


def test_refresh_brings_claude_codes_clone_to_the_feed(
    demo_server: DemoServer,
    own_group: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = demo_server.live.services
    group_id, token = own_group
    folder = tmp_path / "ws"
    init(capsys, demo_server.live.base_url, token, folder)
    git_url = f"{demo_server.live.base_url}/marketplace.git"
    refresh = ("marketplace", "refresh", "--workspace", str(folder))
    default = Path(os.environ["CLAUDE_CONFIG_DIR"]) / "plugins" / "marketplaces" / "agnes"
    code, first = cli(capsys, *refresh)
    assert code == exit_codes.OK and first["claude_clone"] == {
        "path": str(default),
        "outcome": "absent",
        "updated": False,
        "commit": None,
        "message": "not added to Claude Code yet",
    }
    capsys.readouterr()
    assert main([*refresh]) == exit_codes.OK
    assert "Claude Code: marketplace not added yet" in capsys.readouterr().out

    grant = services.grants.add(group_id, ResourceType.MARKETPLACE_PLUGIN, f"demo/{OTHER}")
    clone = claude_clone_of(git_url, tmp_path / "claude-home-elsewhere" / "agnes")
    assert listed(clone) == [GRANTED, OTHER]
    services.grants.delete(grant.id)  # revoked

    # The problem: Claude Code's (fast-forward) pull cannot follow the feed, whose new
    # commit is another root commit; a merge would refuse it too.
    pulled = plain_git("pull", "--ff-only", "origin", "HEAD", cwd=clone)
    assert pulled.returncode != 0 and "Not possible to fast-forward" in pulled.stderr
    merged = plain_git("pull", "--no-rebase", "origin", "HEAD", cwd=clone, **IDENTITY)
    assert merged.returncode != 0 and "unrelated histories" in merged.stderr
    assert listed(clone) == [GRANTED, OTHER]  # Claude Code would keep offering it

    code, second = cli(capsys, *refresh)
    assert code == exit_codes.OK, second
    moved = second["claude_clone"]
    assert moved["path"] == str(clone) and moved["outcome"] == "updated" and moved["updated"]
    assert moved["commit"] == second["commit"] == first["commit"]  # the feed's commit
    assert plain_git("rev-parse", "HEAD", cwd=clone).stdout.strip() == second["commit"]
    assert listed(clone) == [GRANTED] and not (clone / "plugins" / f"demo-{OTHER}").exists()
    assert plain_git("status", "--porcelain", cwd=clone).stdout == ""
    assert not any(token.encode() in data for data in files_under(clone).values())
    capsys.readouterr()
    assert main([*refresh]) == exit_codes.OK  # again, as a person reads it
    assert f"Claude Code's clone {clone}: already at the feed's commit" in capsys.readouterr().out
    # ...and Claude Code's own pull works again from there.
    assert plain_git("pull", "--ff-only", "origin", "HEAD", cwd=clone).returncode == 0

    code, third = cli(capsys, *refresh)
    assert code == exit_codes.OK and third["claude_clone"]["outcome"] == "current"
    assert (
        not third["claude_clone"]["updated"] and third["claude_clone"]["commit"] == first["commit"]
    )

    # Claude Code busy in its clone (git's index lock held): said, exit 1, left as it is.
    (clone / ".git" / "index.lock").touch()
    code, busy = cli(capsys, *refresh)
    assert code == exit_codes.FAILURE and busy["claude_clone"]["outcome"] == "failed"
    assert "index.lock" in busy["claude_clone"]["message"]
    assert busy["claude_clone"]["commit"] == first["commit"] and listed(clone) == [GRANTED]
    capsys.readouterr()
    assert main([*refresh, "--quiet"]) == exit_codes.FAILURE
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: Claude Code's clone {clone}: not updated:")


def test_refresh_moves_a_clone_whose_url_carries_credentials(
    demo_server: DemoServer,
    own_group: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Claude Code's clone added with a token in the URL is still this feed's: it is moved
    (with the workspace's token, not the one in its URL) and no message shows the token."""
    services = demo_server.live.services
    group_id, token = own_group
    folder = tmp_path / "ws"
    init(capsys, demo_server.live.base_url, token, folder)
    git_url = f"{demo_server.live.base_url}/marketplace.git"
    grant = services.grants.add(group_id, ResourceType.MARKETPLACE_PLUGIN, f"demo/{OTHER}")
    clone = claude_clone_of(git_url, tmp_path / "claude-home-elsewhere" / "agnes")
    stale = git_url.replace("://", "://x:agnes_stale_token@", 1)
    assert plain_git("remote", "set-url", "origin", stale, cwd=clone).returncode == 0
    services.grants.delete(grant.id)  # revoked

    code, summary = cli(capsys, "marketplace", "refresh", "--workspace", str(folder))
    assert code == exit_codes.OK, summary
    moved = summary["claude_clone"]
    assert (moved["outcome"], moved["commit"]) == ("updated", summary["commit"]), moved
    assert listed(clone) == [GRANTED] and "agnes_stale_token" not in json.dumps(summary)


def test_refresh_leaves_a_clone_of_something_else_alone(
    demo_server: DemoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ws"
    init(capsys, demo_server.live.base_url, demo_server.analyst_token, folder)
    git_url = f"{demo_server.live.base_url}/marketplace.git"
    refresh = ("marketplace", "refresh", "--workspace", str(folder))
    # In the default place (no known_marketplaces.json entry): a clone of another feed.
    clone = Path(os.environ["CLAUDE_CONFIG_DIR"]) / "plugins" / "marketplaces" / "agnes"
    assert plain_git("clone", "--quiet", git_url, str(clone)).returncode == 0
    elsewhere = "https://someone:s3cret@git.example.com/plugins.git"
    assert plain_git("remote", "set-url", "origin", elsewhere, cwd=clone).returncode == 0
    (clone / "mine.txt").write_text("mine")
    before = files_under(clone)
    commit = plain_git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    code, summary = cli(capsys, *refresh)
    assert code == exit_codes.OK
    left = summary["claude_clone"]
    assert (left["outcome"], left["updated"], left["commit"]) == ("skipped", False, commit)
    assert "git.example.com/plugins.git" in left["message"] and "s3cret" not in left["message"]
    assert files_under(clone) == before

    not_git = tmp_path / "plain-folder"  # where known_marketplaces.json says: no git there
    known_marketplace(git_url, not_git)
    not_git.mkdir()
    (not_git / "notes.md").write_text("x")
    code, summary = cli(capsys, *refresh)
    assert code == exit_codes.OK and summary["claude_clone"]["path"] == str(not_git)
    assert summary["claude_clone"]["outcome"] == "skipped"
    assert "not a git clone" in summary["claude_clone"]["message"]
    assert [p.name for p in not_git.iterdir()] == ["notes.md"]


def test_the_session_start_hook_refreshes_once(
    demo_server: DemoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ws"
    for _ in range(2):
        init(capsys, demo_server.live.base_url, demo_server.analyst_token, folder)
    settings = json.loads((folder / ".claude" / "settings.json").read_text())
    start = [h["command"] for group in settings["hooks"]["SessionStart"] for h in group["hooks"]]
    assert [c.split(" ", 1)[1] for c in start] == [
        "pull --quiet || true",
        "marketplace refresh --quiet || true",
    ]


def test_info_lists_the_callers_plugins(
    demo_server: DemoServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flags = ("--server-url", demo_server.live.base_url, "--token", demo_server.analyst_token)
    code, info = cli(capsys, "marketplace", "info", *flags)
    assert code == exit_codes.OK and info["marketplace"] == "agnes"
    assert [(p["name"], p["marketplace"]) for p in info["plugins"]] == [(GRANTED, "demo")]
    assert info["git_url"] == f"{demo_server.live.base_url}/marketplace.git"
    capsys.readouterr()
    assert main(["marketplace", "info", *flags]) == exit_codes.OK
    table = capsys.readouterr().out
    assert GRANTED in table and OTHER not in table and "1.0.0" in table
    code, admin = cli(
        capsys,
        "marketplace",
        "info",
        "--server-url",
        demo_server.live.base_url,
        "--token",
        demo_server.admin_token,
    )
    assert code == exit_codes.OK and admin["plugins"] == []  # Admin is no shortcut here
    monkeypatch.chdir(tmp_path)  # no workspace here: refresh says where it runs
    code, refused = cli(capsys, "marketplace", "refresh", *flags)
    assert code == exit_codes.CONFIG and refused["error"]["code"] == "no_workspace"
    assert not (tmp_path / ".agnes").exists()


# --- a server older than the marketplace ----------------------------------------------


@pytest.fixture
def old_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The real app without its marketplace routes, as an older Agnes: (URL, token)."""
    from agnes_mcp.api.app import create_app
    from agnes_mcp.marketplace import routes as feed
    from agnes_mcp.serve import bind, uvicorn_config
    from agnes_mcp.services import Services
    from agnes_mcp.settings import load_settings

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = load_settings(data_dir=tmp_path / "old", port=port, log_level="warning")
    services = Services.open(settings)
    user = add_user(services)
    app = create_app(services)
    app.router.routes[:] = [  # FastAPI keeps each included router as one route
        r for r in app.router.routes if getattr(r, "original_router", None) is not feed.router
    ]
    server = uvicorn.Server(uvicorn_config(settings, app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", token_for(services, user)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        services.close()


def test_init_on_a_server_without_a_marketplace_still_wires_the_workspace(
    old_server: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, token = old_server
    folder = tmp_path / "ws"
    summary = init(capsys, base, token, folder)
    assert summary["marketplace"] is None and summary["git_credential"] is None
    settings = json.loads((folder / ".claude" / "settings.json").read_text())
    assert "extraKnownMarketplaces" not in settings and "hooks" in settings
    assert not global_git_config().exists()  # the git config was not touched
    capsys.readouterr()
    flags = ["--server-url", base, "--token", token, "--workspace", str(folder)]
    assert main(["init", *flags, "--no-pull"]) == exit_codes.OK
    assert "no plugin marketplace" in capsys.readouterr().out
    assert main(["marketplace", "refresh", *flags]) == exit_codes.FAILURE
    assert "serves no plugin marketplace" in capsys.readouterr().err
    # The session-start hook's refresh: nothing to do, nothing said, the session goes on.
    hook = settings["hooks"]["SessionStart"][-1]["hooks"][0]["command"]
    assert hook.endswith("marketplace refresh --quiet || true")
    assert main(["marketplace", "refresh", *flags, "--quiet"]) == exit_codes.OK
    assert capsys.readouterr() == ("", "")
    assert not (folder / ".agnes" / "marketplace").exists()
