"""Credentials bound to a workspace: ``agnes init`` writes the workspace's own entry (in the
user's config folder, never in the workspace), ``agnes login`` cannot silently change who a
workspace acts as, ``agnes whoami`` says which credentials it used, and the old single
credentials file still works as the user's default."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from agnes_sync.credentials import config_home, credentials_path
from cli import exit_codes
from tests.cli_harness import run
from tests.conftest import DemoServer, add_user, empty_workspace


def whoami(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, "whoami", "--json", *argv)
    assert code == exit_codes.OK, err or out
    return json.loads(out)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(a folder outside any workspace, a workspace folder to be) with Claude's home apart."""
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    return outside, tmp_path / "ws"


def init_as_analyst(demo: DemoServer, folder: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, err = run(
        capsys,
        "init",
        "--server-url",
        demo.live.base_url,
        "--token",
        demo.analyst_token,
        "--workspace",
        str(folder),
        "--json",
    )
    assert code == exit_codes.OK, err or out
    return json.loads(out)


def pulled_tables(folder: Path) -> set[str]:
    manifest = json.loads((folder / ".agnes" / "manifest.json").read_text())
    return {t["id"] for t in manifest["tables"]}


def test_login_as_admin_elsewhere_leaves_the_workspace_acting_as_the_analyst(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outside, folder = places
    summary = init_as_analyst(demo_server, folder, capsys)
    assert "support_tickets" not in pulled_tables(folder)
    entry = Path(summary["credentials"])
    assert entry.is_relative_to(config_home()) and not entry.is_relative_to(folder)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    for path in folder.rglob("*"):  # the token is never written into the workspace
        if path.is_file():
            assert demo_server.analyst_token.encode() not in path.read_bytes(), path

    monkeypatch.chdir(outside)
    code, _, err = run(
        capsys,
        "login",
        "--server-url",
        demo_server.live.base_url,
        "--token",
        demo_server.admin_token,
    )
    assert code == exit_codes.OK, err
    assert whoami(capsys)["email"].startswith("admin@")

    monkeypatch.chdir(folder)
    me = whoami(capsys)
    assert me["email"].startswith("analyst@")
    assert me["credentials"]["token_from"].startswith("workspace entry ")
    assert me["credentials"]["workspace"] == str(folder.resolve())
    (folder / ".agnes" / "pull-state.json").unlink()  # the whole manifest is fetched again
    code, _, err = run(capsys, "pull", "--json")
    assert code == exit_codes.OK, err
    assert "support_tickets" not in pulled_tables(folder)  # pulled as the analyst still
    assert not list((folder / ".agnes" / "data").glob("support_tickets*"))

    monkeypatch.chdir(outside)
    me = whoami(capsys)
    assert me["email"].startswith("admin@")
    assert me["credentials"]["token_from"] == f"user default {credentials_path()}"


def test_login_inside_a_workspace_must_say_which_credentials_it_changes(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, folder = places
    init_as_analyst(demo_server, folder, capsys)
    (folder / "sub").mkdir()
    monkeypatch.chdir(folder / "sub")
    url = ["--server-url", demo_server.live.base_url]
    code, _, err = run(capsys, "login", *url, "--token", demo_server.admin_token)
    assert code == exit_codes.USAGE
    assert "--workspace" in err and "--global" in err and str(folder.resolve()) in err
    assert whoami(capsys)["email"].startswith("analyst@")  # nothing changed

    code, out, _ = run(capsys, "login", *url, "--token", demo_server.admin_token, "--global")
    assert code == exit_codes.OK and "default" in out
    assert whoami(capsys)["email"].startswith("analyst@")  # the workspace keeps its own
    assert json.loads(credentials_path().read_text())["token"] == demo_server.admin_token

    code, out, _ = run(
        capsys, "login", *url, "--token", demo_server.admin_token, "--workspace", str(folder)
    )
    assert code == exit_codes.OK
    assert f"Workspace {folder.resolve()}" in out and "analyst@" in out  # says who it was
    assert whoami(capsys)["email"].startswith("admin@")


def test_flags_and_environment_override_the_workspace_entry(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, folder = places
    init_as_analyst(demo_server, folder, capsys)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.admin_token)
    me = whoami(capsys)
    assert me["email"].startswith("admin@") and me["credentials"]["token_from"] == "AGNES_TOKEN"
    assert me["credentials"]["server_url_from"].startswith("workspace entry ")
    me = whoami(capsys, "--token", demo_server.analyst_token)
    assert me["email"].startswith("analyst@") and me["credentials"]["token_from"] == "--token"
    code, out, _ = run(capsys, "whoami")
    assert code == exit_codes.OK and "token: AGNES_TOKEN" in out and "server: " in out


def test_the_old_credentials_file_is_the_users_default(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outside, _ = places
    old = credentials_path()
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_text(
        json.dumps({"server_url": demo_server.live.base_url, "token": demo_server.analyst_token})
    )
    old.chmod(0o600)
    monkeypatch.chdir(outside)
    me = whoami(capsys)
    assert me["email"].startswith("analyst@")
    assert me["credentials"]["token_from"] == f"user default {old}"
    # A workspace made before entries existed has none: it goes on with the default, and
    # whoami says so.
    legacy = outside / "legacy"
    (legacy / ".agnes").mkdir(parents=True)
    monkeypatch.chdir(legacy)
    code, out, _ = run(capsys, "whoami")
    assert code == exit_codes.OK and "no entry of its own" in out and "agnes init" in out


class Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        Recorder.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"error": {"code": "missing_token", "message": "No token."}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_stored_token_is_only_sent_to_the_server_it_was_saved_for(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    recorder: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outside, folder = places
    init_as_analyst(demo_server, folder, capsys)
    for where in (folder, outside):  # the workspace entry, then the user default
        monkeypatch.chdir(where)
        code, _, err = run(capsys, "whoami", "--server-url", recorder)
        assert code == exit_codes.AUTH
        assert "saved for" in err and demo_server.live.base_url in err
    assert Recorder.seen == [None, None]


def test_a_pasted_token_is_trimmed_and_a_broken_one_refused_without_echoing_it(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token pasted with blanks or a line break around it (a terminal's copy, a .env
    file saved on Windows) went into the Authorization header as it was: the request
    failed as 'Cannot reach the Agnes server' (exit 5) and the message printed the whole
    token. It is trimmed; one with a blank inside is refused, never echoed."""
    outside, folder = places
    monkeypatch.chdir(outside)
    token = demo_server.analyst_token
    url = ["--server-url", demo_server.live.base_url]
    assert whoami(capsys, *url, "--token", f"  {token}\n")["email"].startswith("analyst@")
    monkeypatch.setenv("AGNES_TOKEN", f"{token}\r\n")
    assert whoami(capsys, *url)["email"].startswith("analyst@")
    code, out, err = run(
        capsys, "init", *url, "--token", f" {token} ", "--workspace", str(folder), "--no-pull"
    )
    assert code == exit_codes.OK, err
    assert json.loads(next(config_home().glob("workspaces/*.json")).read_text())["token"] == token
    code, out, err = run(capsys, "whoami", *url, "--token", f"{token[:20]} {token[20:]}")
    assert code == exit_codes.CONFIG, err
    assert token[20:] not in out + err and "token given by --token holds a space" in err
    monkeypatch.setenv("AGNES_TOKEN", " \t ")
    code, out, err = run(capsys, "whoami", *url)
    assert code == exit_codes.CONFIG and "token given by AGNES_TOKEN is blank" in err


def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_workspace_seen_from_another_config_home_keeps_its_server(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Claude Code starting `agnes mcp` with another HOME/AGNES_CONFIG_HOME than `agnes init`
    ran with found no workspace entry and went to the built-in http://127.0.0.1:8000
    ('Cannot reach'). The workspace's last pull names its server: that is used, and with
    no token stored for it the refusal says that none was sent and where it was looked
    for."""
    _, folder = places
    init_as_analyst(demo_server, folder, capsys)
    elsewhere = tmp_path / "other-config"
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(elsewhere))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)  # e.g. .mcp.json's env
    me = whoami(capsys)
    assert me["email"].startswith("analyst@")
    assert me["credentials"]["server_url"] == demo_server.live.base_url
    assert "pull-state.json" in me["credentials"]["server_url_from"]
    monkeypatch.delenv("AGNES_TOKEN")

    environment = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    environment["AGNES_CONFIG_HOME"] = str(elsewhere)
    server = json.loads((folder / ".mcp.json").read_text())["mcpServers"]["agnes"]
    parameters = StdioServerParameters(
        command=server["command"], args=server["args"], env=environment, cwd=folder
    )
    with open(os.devnull, "w") as quiet:
        async with (
            stdio_client(parameters, errlog=quiet) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            result = await session.call_tool("whoami", {})
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and "unauthenticated" in text, text
    assert "sent no token" in text and str(elsewhere) in text and "8000" not in text


def test_a_revoked_token_is_said_refused_and_a_missing_one_missing(
    demo_server: DemoServer,
    places: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both refusals reach `agnes pull` through its own transport: a revoked token is
    refused (check the token), and no token at all is named as such (where it was
    looked for), never one for the other."""
    services = demo_server.live.services
    info, token = services.tokens.create(add_user(services).id, "revoked")
    services.tokens.revoke(info.id)
    _, folder = places
    empty_workspace(folder)
    monkeypatch.chdir(folder)
    url = ["--server-url", demo_server.live.base_url]
    code, _, err = run(capsys, "pull", *url, "--token", token)
    assert code == exit_codes.AUTH and "refused the token" in err and "no token" not in err
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "empty-config"))
    code, _, err = run(capsys, "pull", *url)
    assert code == exit_codes.AUTH and "sent no token" in err, err
