"""``agnes init`` and ``agnes push`` against a real server: the Claude Code files merged
into what is there, re-runs that change nothing, the hooks and the MCP registration
actually working, uploads stored once per content, and their refusals."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from agnes_sync.hashing import file_hash
from agnes_sync.pull.pull import PullBusy
from agnes_sync.push import PushBusy
from agnes_sync.workspace.claude_files import BEGIN, END
from agnes_sync.workspace.layout import WorkspacePaths
from agnes_sync.workspace.lock import workspace_lock
from cli import exit_codes
from cli.main import main
from tests.cli_harness import limited_command
from tests.conftest import DemoServer, add_user, empty_workspace, token_for

USER_SETTINGS = {
    "permissions": {"allow": ["Bash(ls:*)"]},
    "hooks": {
        "SessionStart": [
            {"matcher": "startup", "hooks": [{"type": "command", "command": "echo hello"}]}
        ],
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "true"}]}],
    },
}


@pytest.fixture
def env(demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config home and a Claude home of this test's own; returns the config home."""
    home = tmp_path / "config"
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    return home


def init(
    demo: DemoServer, folder: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict]:
    argv = ["init", "--server-url", demo.live.base_url, "--workspace", str(folder), "--json"]
    code = main([*argv, "--token", demo.analyst_token, *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def hooks(folder: Path, event: str) -> list[str]:
    settings = json.loads((folder / ".claude" / "settings.json").read_text())
    return [h["command"] for group in settings["hooks"][event] for h in group["hooks"]]


def test_init_merges_into_a_users_files_and_pulls(
    demo_server: DemoServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ws"
    (folder / ".claude").mkdir(parents=True)
    (folder / ".claude" / "settings.json").write_text(json.dumps(USER_SETTINGS))
    (folder / ".mcp.json").write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}}))
    (folder / "CLAUDE.md").write_text("# My notes\n\nAlways answer in French.\n")
    (folder / ".gitignore").write_text("*.csv")
    code, summary = init(demo_server, folder, capsys)
    assert code == exit_codes.OK and summary["user"].startswith("analyst@")
    assert summary["pull"]["downloaded"] > 0 and summary["pull"]["failed"] == []
    assert set(summary["written"]) == {
        ".mcp.json",
        ".claude/settings.json",
        "CLAUDE.md",
        ".gitignore",
    }

    credentials = env / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text()) == {
        "server_url": demo_server.live.base_url,
        "token": demo_server.analyst_token,
    }
    servers = json.loads((folder / ".mcp.json").read_text())["mcpServers"]
    assert servers["other"] == {"command": "x"}
    assert servers["agnes"]["args"] == ["mcp"] and servers["agnes"]["type"] == "stdio"
    assert Path(servers["agnes"]["command"]).name == "agnes"
    settings = json.loads((folder / ".claude" / "settings.json").read_text())
    assert settings["permissions"] == USER_SETTINGS["permissions"]
    assert settings["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]
    start = hooks(folder, "SessionStart")
    assert start[0] == "echo hello" and re.fullmatch(r"\S*agnes pull --quiet \|\| true", start[1])
    assert re.fullmatch(r"\S*agnes marketplace refresh --quiet \|\| true", start[2])
    assert re.fullmatch(r"\S*agnes push --quiet \|\| true", hooks(folder, "SessionEnd")[0])
    claude_md = (folder / "CLAUDE.md").read_text()
    rails = httpx.get(
        f"{demo_server.live.base_url}/api/workspace/instructions",
        headers={"Authorization": f"Bearer {demo_server.analyst_token}"},
    ).json()["claude_md"]
    assert claude_md.startswith("# My notes\n\nAlways answer in French.\n")
    assert f"{BEGIN}\n{rails.strip()}\n{END}\n" in claude_md
    assert (folder / ".gitignore").read_text() == "*.csv\n.agnes/\n"
    assert any((folder / ".agnes" / "data").rglob("*.parquet"))

    # Again: nothing to write, no hook twice, the pull has nothing to fetch.
    before = {
        p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and ".agnes" not in p.parts
    }
    code, again = init(demo_server, folder, capsys)
    assert code == exit_codes.OK and again["written"] == [] and again["pull"]["downloaded"] == 0
    assert before == {p: p.read_bytes() for p in before}
    assert hooks(folder, "SessionStart") == start and len(hooks(folder, "SessionEnd")) == 1


def test_init_whose_pull_stops_says_the_workspace_is_wired(
    demo_server: DemoServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first pull that stops (Ctrl-C in a long one, a dropped server, a full disk; here
    another pull holding the lock) printed its error alone: nothing said the workspace was
    wired, nor that 'agnes pull' finishes the job."""
    folder = empty_workspace(tmp_path / "ws")
    argv = ["init", "--server-url", demo_server.live.base_url, "--workspace", str(folder)]
    with workspace_lock(WorkspacePaths(folder), "pull.lock", PullBusy):
        code = main([*argv, "--token", demo_server.analyst_token])
    out, err = capsys.readouterr()
    assert code == exit_codes.FAILURE and "Another pull is running" in err
    assert f"Workspace {folder} is wired to" in out
    assert "Pull: not finished" in out and "run 'agnes pull'" in out
    assert hooks(folder, "SessionStart")  # wired indeed


def test_new_rails_from_an_admin_reach_claude_md(
    demo_server: DemoServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ws"
    assert init(demo_server, folder, capsys, "--no-pull")[0] == exit_codes.OK
    (folder / "CLAUDE.md").write_text((folder / "CLAUDE.md").read_text() + "\nMy own line.\n")
    rails = tmp_path / "rails.md"
    rails.write_text("# House rules\n\nQuery `orders` before guessing.\n")
    admin = ["--server-url", demo_server.live.base_url, "--token", demo_server.admin_token]
    try:
        assert main(["admin", "server-config", *admin, "--instructions-file", str(rails)]) == 0
        capsys.readouterr()
        code, summary = init(demo_server, folder, capsys, "--no-pull")
        assert code == exit_codes.OK and summary["written"] == ["CLAUDE.md"]
        text = (folder / "CLAUDE.md").read_text()
        assert f"{BEGIN}\n# House rules\n\nQuery `orders` before guessing.\n{END}\n" in text
        assert text.endswith("My own line.\n") and text.count(BEGIN) == 1
    finally:
        assert main(["admin", "server-config", *admin, "--reset-instructions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agent_instructions_custom"] is False


def test_init_with_a_refused_token_writes_nothing(
    demo_server: DemoServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    code = main(
        [
            "init",
            "--server-url",
            demo_server.live.base_url,
            "--token",
            "agnes_abcdefghij_" + "x" * 43,
            "--workspace",
            str(folder),
        ]
    )
    assert code == exit_codes.AUTH and "token" in capsys.readouterr().err.lower()
    assert list(folder.iterdir()) == [] and not (env / "credentials").exists()


def test_init_whose_credentials_cannot_be_saved_writes_nothing(
    demo_server: DemoServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A config folder that refuses the credentials (here one under a file: the same
    OSError a read-only folder gives, whoever runs the test) failed as a file the user
    named ('name another file') and left .agnes/ behind: a workspace without credentials.
    It is a config error naming the folder and AGNES_CONFIG_HOME, and nothing stays."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(blocker / "agnes"))
    folder = tmp_path / "ws"
    folder.mkdir()
    argv = ["init", "--server-url", demo_server.live.base_url, "--workspace", str(folder)]
    code = main([*argv, "--token", demo_server.analyst_token])
    err = capsys.readouterr().err
    assert code == exit_codes.CONFIG, err
    assert "credentials cannot be saved" in err and "AGNES_CONFIG_HOME" in err
    assert "name another file" not in err and list(folder.iterdir()) == []


def test_init_leaves_a_broken_settings_file_alone(
    demo_server: DemoServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ws"
    (folder / ".claude").mkdir(parents=True)
    broken = '{"hooks": {"SessionStart": [}'
    (folder / ".claude" / "settings.json").write_text(broken)
    code = main(
        [
            "init",
            "--server-url",
            demo_server.live.base_url,
            "--token",
            demo_server.analyst_token,
            "--workspace",
            str(folder),
            "--no-pull",
        ]
    )
    assert code == exit_codes.FAILURE
    assert "settings.json is not valid JSON" in capsys.readouterr().err
    assert (folder / ".claude" / "settings.json").read_text() == broken


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_wiring_works_as_claude_code_would_use_it(
    demo_server: DemoServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run the SessionStart hook through a shell, then start the registered MCP server
    the way Claude Code does (command and args from .mcp.json, in the folder)."""
    folder = tmp_path / "ws"
    assert init(demo_server, folder, capsys)[0] == exit_codes.OK
    victim = next((folder / ".agnes" / "data").rglob("*.parquet"))
    victim.unlink()
    pull, refresh = hooks(folder, "SessionStart")
    hook = subprocess.run(pull, shell=True, cwd=folder, capture_output=True, text=True)
    assert hook.returncode == 0 and hook.stdout == "" and victim.is_file()
    # The plugin refresh: silent, and it did its work (the workspace's copy of the feed).
    hook = subprocess.run(refresh, shell=True, cwd=folder, capture_output=True, text=True)
    assert (hook.stdout, hook.stderr) == ("", "")
    assert (folder / ".agnes" / "marketplace" / ".claude-plugin" / "marketplace.json").is_file()
    server = json.loads((folder / ".mcp.json").read_text())["mcpServers"]["agnes"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    environment["AGNES_CONFIG_HOME"] = str(env)  # the credentials init stored
    parameters = StdioServerParameters(
        command=server["command"], args=server["args"], env=environment, cwd=folder
    )
    async with (
        stdio_client(parameters) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        result = await session.call_tool("query", {"sql": "SELECT count(*) AS n FROM customers"})
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["rows"][0][0] > 0


# --- push --------------------------------------------------------------------------


@pytest.fixture
def pushing(
    demo_server: DemoServer, env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path, str]]:
    """(workspace, its transcripts folder, the user's id) for a user of their own."""
    services = demo_server.live.services
    user = add_user(services)
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", token_for(services, user))
    folder = empty_workspace(tmp_path / "ws")
    encoded = re.sub(r"[^A-Za-z0-9]", "-", str(folder.resolve()))
    transcripts = tmp_path / "claude" / "projects" / encoded
    transcripts.mkdir(parents=True)
    yield folder, transcripts, user.id


def push(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["push", "--workspace", str(folder), "--json"])
    return code, json.loads(capsys.readouterr().out)


def stored(demo: DemoServer, user_id: str) -> dict[str, bytes]:
    root = demo.live.services.settings.data_dir / "uploads" / user_id
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != "index.jsonl"
    }


def test_push_uploads_each_content_once(
    demo_server: DemoServer,
    pushing: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, transcripts, user_id = pushing
    one, two = transcripts / "a1.jsonl", transcripts / "b2.jsonl"
    one.write_text('{"type":"user","message":"hi"}\n')
    two.write_text('{"type":"user","message":"revenue?"}\n' * 1000)
    (transcripts / "notes.txt").write_text("not a transcript")
    (folder / "CLAUDE.local.md").write_text("I prefer charts.\n")
    code, summary = push(folder, capsys)
    assert code == exit_codes.OK and (summary["uploaded"], summary["unchanged"]) == (3, 0)
    assert stored(demo_server, user_id) == {
        f"sessions/{file_hash(one)}.jsonl": one.read_bytes(),
        f"sessions/{file_hash(two)}.jsonl": two.read_bytes(),
        f"local-md/{file_hash(folder / 'CLAUDE.local.md')}.md": b"I prefer charts.\n",
    }
    index = demo_server.live.services.settings.data_dir / "uploads" / user_id / "sessions"
    names = [json.loads(line)["name"] for line in (index / "index.jsonl").read_text().splitlines()]
    assert sorted(names) == ["a1.jsonl", "b2.jsonl"]

    assert push(folder, capsys)[1]["uploaded"] == 0  # remembered: no request at all
    with one.open("a") as more:
        more.write('{"type":"assistant","message":"hello"}\n')
    code, summary = push(folder, capsys)
    assert (summary["uploaded"], summary["unchanged"]) == (1, 2)
    assert len(stored(demo_server, user_id)) == 4  # both versions of a1 are kept
    # A lost push state: the server recognises every content and stores nothing twice.
    (folder / ".agnes" / "push-state.json").unlink()
    code, summary = push(folder, capsys)
    assert code == exit_codes.OK and (summary["uploaded"], summary["unchanged"]) == (0, 3)
    assert len(stored(demo_server, user_id)) == 4


def test_one_push_at_a_time(
    pushing: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, transcripts, _ = pushing
    (transcripts / "a.jsonl").write_text("{}\n")
    with workspace_lock(WorkspacePaths(folder).ensure(), "push.lock", PushBusy):
        code, answer = push(folder, capsys)
    assert code == exit_codes.FAILURE and answer["error"]["code"] == "push_running"
    assert push(folder, capsys)[1]["uploaded"] == 1


def test_a_push_the_disk_refuses_to_remember_says_so(
    pushing: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk refused the push's own state (full, read-only; here a file-size limit):
    a traceback, or "file_unreadable ... name another file" for its lock file; now the
    workspace's refusal, naming the folder and the reason."""
    folder, transcripts, _ = pushing
    (transcripts / "a.jsonl").write_text("{}\n")
    argv = ("push", "--workspace", str(folder), "--json")
    refused = subprocess.run(
        limited_command(10, *argv),
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == exit_codes.FAILURE and "Traceback" not in refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "workspace_unwritable" and str(folder) in error["message"]
    assert push(folder, capsys)[1]["uploaded"] == 0  # sent then; the server has it


def test_uploads_refuse_damage_size_and_bad_names(
    demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = demo_server.live.services
    user = add_user(services)
    client = demo_server.live.client(token_for(services, user))
    body = b'{"a": 1}\n' * 100
    good = file_hash_of(body)
    url = "/api/upload/sessions"
    damaged = client.post(
        url, params={"name": "s.jsonl"}, content=body, headers={"X-Agnes-Content-Hash": "0" * 64}
    )
    assert damaged.status_code == 400 and damaged.json()["error"]["code"] == "upload_damaged"
    for name in ("../escape.jsonl", "s.txt", ".hidden.jsonl"):
        answer = client.post(url, params={"name": name}, content=body)
        assert answer.status_code in (400, 422), name
    monkeypatch.setattr(services.settings, "max_upload_bytes", 500)
    too_big = client.post(
        url, params={"name": "s.jsonl"}, content=body, headers={"X-Agnes-Content-Hash": good}
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    root = services.settings.data_dir / "uploads" / user.id
    assert not [p for p in root.rglob("*") if p.is_file()]  # nothing kept, no leftovers
    assert client.get(f"/api/upload/sessions/{good}").json() == {"stored": False}
    monkeypatch.setattr(services.settings, "max_upload_bytes", 1 << 20)
    ok = client.post(
        url, params={"name": "s.jsonl"}, content=body, headers={"X-Agnes-Content-Hash": good}
    )
    assert ok.status_code == 200 and ok.json() == {"hash": good, "size": len(body), "stored": True}
    assert client.get(f"/api/upload/sessions/{good}").json() == {"stored": True}
    with httpx.Client(base_url=demo_server.live.base_url) as anonymous:
        assert anonymous.post(url, params={"name": "s.jsonl"}, content=body).status_code == 401


def file_hash_of(data: bytes) -> str:
    from agnes_sync.hashing import new_hasher

    hasher = new_hasher()
    hasher.update(data)
    return str(hasher.hexdigest())


def test_a_workspace_inside_a_git_checkout_keeps_its_data_out_of_git(tmp_path: Path) -> None:
    """README makes the workspace inside the checkout: no .gitignore there, yet git must not
    offer the pulled parquet; outside any work tree, a folder without one is left alone."""
    import subprocess

    from agnes_sync.workspace.claude_files import ignore_data

    loose = tmp_path / "loose"
    loose.mkdir()
    assert ignore_data(loose) is False and not (loose / ".gitignore").exists()
    checkout = tmp_path / "checkout"
    folder = checkout / "analysis"
    (folder / ".agnes" / "data").mkdir(parents=True)
    (folder / ".agnes" / "data" / "orders.parquet").write_bytes(b"PAR1")
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    assert ignore_data(folder) is True
    assert (folder / ".gitignore").read_text() == ".agnes/\n"
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status == "?? analysis/.gitignore\n"
    assert ignore_data(folder) is False  # once is enough


def test_init_where_no_workspace_can_be_writes_nothing(
    demo_server: DemoServer, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--workspace` naming a file failed with "error: .../.agnes: Not a directory" after
    the workspace's credentials (and the user's default) were written for it."""
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    for folder in (taken, taken / "below"):
        argv = ["init", "--server-url", demo_server.live.base_url, "--no-pull"]
        code = main([*argv, "--token", demo_server.analyst_token, "--workspace", str(folder)])
        err = capsys.readouterr().err
        assert code == exit_codes.FAILURE and "hint: agnes init makes .agnes/" in err, err
    assert taken.read_text() == "mine"
    assert not (env / "credentials").exists() and not (env / "workspaces").exists()
