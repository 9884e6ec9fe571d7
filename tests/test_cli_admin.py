"""``agnes admin ...`` against a live server over HTTP: JSON and tables, exit codes, credentials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agnes_sync.credentials import credentials_path, resolve, write_file
from cli import exit_codes
from cli.main import main
from tests.conftest import LiveServer, add_user, token_for, unique_email
from tests.refused_port import refused_url


def run(
    capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str, token: str | None = None
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv, "--server-url", server.base_url, "--token", token or server.admin_token])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(
    capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str, token: str | None = None
) -> dict:
    code, out, err = run(capsys, server, *argv, "--json", token=token)
    assert code == 0, err or out
    return json.loads(out)


def test_user_group_grant_token_round_trip(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    from agnes_sync.table_spec import TableSpec

    email = unique_email("cli")
    group = f"CLI Team {email.split('@')[0]}"
    live_server.services.registry.add(
        TableSpec(id=f"cli_{email.split('@')[0]}", source_type="files")
    )
    table_id = f"cli_{email.split('@')[0]}"

    user = run_json(capsys, live_server, "admin", "user", "add", email, "--name", "Cli User")
    assert user["email"] == email
    assert any(
        u["email"] == email for u in run_json(capsys, live_server, "admin", "user", "list")["users"]
    )

    run_json(
        capsys, live_server, "admin", "group", "create", group, "--description", "from the CLI"
    )
    members = run_json(capsys, live_server, "admin", "group", "add-member", group, email)
    assert [m["email"] for m in members["members"]] == [email]

    grant = run_json(capsys, live_server, "admin", "grant", "create", group, "table", table_id)
    listed = run_json(capsys, live_server, "admin", "grant", "list", "--group", group)
    assert [g["id"] for g in listed["grants"]] == [grant["id"]]

    created = run_json(
        capsys, live_server, "admin", "token", "create", "--user", email, "--name", "ci"
    )
    me = run_json(capsys, live_server, "whoami", token=created["token"])
    assert me["email"] == email and group in me["groups"]
    tokens = run_json(capsys, live_server, "admin", "token", "list", "--user", email)["tokens"]
    assert [t["id"] for t in tokens] == [created["info"]["id"]]
    revoked = run_json(capsys, live_server, "admin", "token", "revoke", created["info"]["id"])
    assert revoked["revoked_at"] and not revoked["already_revoked"]
    # a second revoke said "... revoked." as if it had done something
    code, out, _ = run(capsys, live_server, "admin", "token", "revoke", created["info"]["id"])
    assert code == exit_codes.OK and "was already revoked" in out and "nothing changed" in out

    run_json(capsys, live_server, "admin", "group", "remove-member", group, email)
    run_json(capsys, live_server, "admin", "grant", "delete", grant["id"])
    code, out, _ = run(capsys, live_server, "admin", "group", "delete", group)
    # it said the group's id alone ("Group grp_9c2e... deleted."), not the name typed
    assert code == exit_codes.OK and out.startswith(f"Group {group} (grp_") and "deleted." in out
    assert not run_json(capsys, live_server, "admin", "user", "deactivate", email)["active"]


def test_human_output_is_a_table(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    code, out, _ = run(capsys, live_server, "admin", "group", "list")
    assert code == 0
    assert "Name" in out and "Members" in out and "Everyone" in out
    code, out, _ = run(capsys, live_server, "admin", "token", "create", "--name", "shown-once")
    assert code == 0 and "agnes_" in out and "shown only once" in out


@pytest.mark.parametrize(
    ("argv", "expected_code", "error_code"),
    [
        (["admin", "group", "delete", "No Such Group"], exit_codes.FAILURE, "group_not_found"),
        (
            ["admin", "grant", "create", "Everyone", "tabel", "x"],
            exit_codes.FAILURE,
            "unknown_resource_type",
        ),
        (["admin", "user", "add", "not-an-email"], exit_codes.FAILURE, "invalid_request"),
    ],
)
def test_errors_map_to_exit_codes(
    capsys: pytest.CaptureFixture[str],
    live_server: LiveServer,
    argv: list[str],
    expected_code: int,
    error_code: str,
) -> None:
    code, out, _ = run(capsys, live_server, *argv, "--json")
    assert code == expected_code
    assert json.loads(out)["error"]["code"] == error_code


def test_auth_failures_exit_4_with_a_hint(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    code, _, err = run(capsys, live_server, "admin", "user", "list", token="nope")
    assert code == exit_codes.AUTH
    assert err.startswith("error: ") and "hint: " in err and "Traceback" not in err
    analyst = token_for(live_server.services, add_user(live_server.services))
    code, _, err = run(capsys, live_server, "admin", "user", "list", token=analyst)
    assert code == exit_codes.AUTH and "not an admin" in err


def test_unreachable_server_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    with refused_url() as url:
        code = main(["admin", "user", "list", "--server-url", url, "--token", "x"])
    assert code == exit_codes.UNREACHABLE
    assert "Cannot reach the Agnes server" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["admin", "user"])
    assert caught.value.code == exit_codes.USAGE


def test_credentials_precedence_and_file_mode(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_file(live_server.base_url, live_server.admin_token)
    assert path == credentials_path() and (path.stat().st_mode & 0o777) == 0o600
    assert resolve(None, None).token == live_server.admin_token
    monkeypatch.setenv("AGNES_TOKEN", "from-env")
    assert resolve(None, None).token == "from-env"
    assert resolve(None, "from-flag").token == "from-flag"
    monkeypatch.delenv("AGNES_TOKEN")
    capsys.readouterr()
    assert main(["whoami", "--json"]) == 0  # URL and token both from the file
    assert json.loads(capsys.readouterr().out)["is_admin"] is True


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("demo", "serve", "whoami", "admin"):
        assert command in result.stdout
    admin_help = subprocess.run(
        [sys.executable, "-m", "cli.main", "admin", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for area in ("user", "token", "group", "grant"):
        assert area in admin_help


def test_ids_with_slashes_cannot_reach_other_routes(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    group = f"Victim {unique_email('v').split('@')[0]}"
    run_json(capsys, live_server, "admin", "group", "create", group)
    code, out, _ = run(
        capsys, live_server, "admin", "token", "revoke", f"../admin/groups/{group}", "--json"
    )
    assert code == exit_codes.FAILURE
    assert json.loads(out)["error"]["code"] in ("token_not_found", "route_not_found")
    groups = run_json(capsys, live_server, "admin", "group", "list")["groups"]
    assert group in [g["name"] for g in groups]


def test_a_server_that_is_not_agnes_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Html(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code = main(["whoami", "--server-url", url, "--token", "x"])
        assert code == exit_codes.CONFIG
        err = capsys.readouterr().err
        assert "is not an Agnes server" in err and "instead of JSON" in err
        assert "Traceback" not in err and "<html>" not in err
    finally:
        server.shutdown()


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com", "http://"])
def test_a_bad_server_url_is_a_config_error(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert main(["whoami", "--server-url", url, "--token", "x"]) == exit_codes.CONFIG
    assert "not an http(s) URL" in capsys.readouterr().err


def test_login_stores_working_credentials(
    capsys: pytest.CaptureFixture[str],
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # outside any workspace (the checkout may be one)
    token = token_for(live_server.services, add_user(live_server.services))
    assert main(["login", "--server-url", live_server.base_url, "--token", token]) == 0
    assert (credentials_path().stat().st_mode & 0o777) == 0o600
    capsys.readouterr()
    assert main(["whoami", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scopes"] == ["data"]
    assert (
        main(["login", "--server-url", live_server.base_url, "--token", "bad"]) == exit_codes.AUTH
    )


def test_terminal_escapes_from_the_server_are_shown_not_obeyed() -> None:
    from cli.output import printable

    assert printable("ok\x1b]0;pwned\x07\u202e") == "ok\\x1b]0;pwned\\x07\\u202e"
    assert printable("tab\tand\nnewline") == "tab\tand\nnewline"


def test_a_refused_cap_says_what_server_config_takes(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """`--set per_query_byte=1GiB` was told to see the API's request schema at /api/docs."""
    code, _, err = run(capsys, live_server, "admin", "server-config", "--set", "max_rows=5")
    assert code == exit_codes.FAILURE and "unknown field" in err
    assert "hint: Did you mean max_result_rows? The caps: per_query_bytes, " in err
    assert "/api/docs" not in err
    code, _, err = run(
        capsys, live_server, "admin", "server-config", "--set", "per_query_bytes=lots"
    )
    assert code == exit_codes.FAILURE and "Write sizes like 5GiB" in err
    assert "Did you mean" not in err


def test_removing_a_membership_an_admin_did_not_make_says_who_made_it(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """`group remove-member Temp y@example.com` said "User 'usr_…' has no 'admin' membership
    in group 'grp_…'": ids for the names typed, and not whether the user was in the group
    at all, nor who put them there."""
    from agnes_mcp.store.groups import MembershipSource

    services = live_server.services
    group = f"Synced {unique_email('g').split('@')[0]}"
    run_json(capsys, live_server, "admin", "group", "create", group)
    stranger = add_user(services)
    code, _, err = run(
        capsys, live_server, "admin", "group", "remove-member", group, stranger.email
    )
    assert code == exit_codes.FAILURE
    assert f"error: {stranger.email} is not a member of {group}." in err
    assert "usr_" not in err and "grp_" not in err
    synced = add_user(services)
    group_id = services.groups.find(group).id
    services.groups.add_member(group_id, synced.id, MembershipSource.GOOGLE_SYNC)
    code, out, _ = run(
        capsys, live_server, "admin", "group", "remove-member", group, synced.email, "--json"
    )
    assert code == exit_codes.FAILURE
    answer = json.loads(out)
    assert answer["error"]["message"] == (
        f"{synced.email} is in {group} through Google group sync, not by an admin: only "
        "memberships an admin made are removed here."
    )
    assert answer["error"]["hint"].startswith("Remove them from the Google group")


def test_a_user_name_too_long_is_refused_in_characters(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """`user add --name <300 characters>` was refused as "Value should have at most 200
    items after validation" (the bound sat outside the optional's text check)."""
    argv = ["admin", "user", "add", unique_email("long"), "--name", "n" * 300]
    code, _, err = run(capsys, live_server, *argv)
    assert code == exit_codes.FAILURE
    assert "name: String should have at most 200 characters" in err and "items" not in err


def test_setting_and_resetting_one_cap_at_once_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """`--set per_query_bytes=1GiB --reset per_query_bytes` reset the cap and said nothing
    of the --set it dropped."""
    before = run_json(capsys, live_server, "admin", "server-config")["overrides"]
    argv = ["admin", "server-config", "--set", "per_query_bytes=1GiB"]
    code, _, err = run(capsys, live_server, *argv, "--reset", "per_query_bytes")
    assert code == exit_codes.USAGE
    assert "--set and --reset both name per_query_bytes" in err
    assert run_json(capsys, live_server, "admin", "server-config")["overrides"] == before


def test_server_config_shows_byte_caps_as_sizes(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """per_query_bytes read 5,368,709,120; the table says 5.0 GiB, --json keeps bytes."""
    from cli.output import size

    caps = run_json(capsys, live_server, "admin", "server-config")["scan_caps"]
    code, out, _ = run(capsys, live_server, "admin", "server-config")
    assert code == exit_codes.OK
    line = next(row for row in out.splitlines() if " per_query_bytes " in row)
    assert size(caps["per_query_bytes"]) in line and f"{caps['per_query_bytes']:,}" not in line
    line = next(row for row in out.splitlines() if " max_result_rows " in row)
    assert f"{caps['max_result_rows']:,}" in line


def test_a_missing_file_given_to_a_command_says_where_it_was_looked_for(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer, tmp_path: Path
) -> None:
    """`--query @daily.sql` with no such file printed "error: daily.sql: No such file or
    directory" and nothing to do about it."""
    missing = tmp_path / "daily.sql"
    argv = ["admin", "register-table", "daily", "--source-type", "files"]
    code, _, err = run(capsys, live_server, *argv, "--query", f"@{missing}", "--dry-run")
    assert code == exit_codes.FAILURE and f"error: {missing}: No such file" in err
    assert "hint: Check the path; a relative one starts at the current folder" in err
    # --instructions-file printed "[Errno 2] No such file or directory: '...'", "See --help."
    argv = ["admin", "server-config", "--instructions-file"]
    code, _, err = run(capsys, live_server, *argv, str(tmp_path / "rails.md"))
    assert code == exit_codes.FAILURE and f"error: {tmp_path / 'rails.md'}: No such file" in err
    assert "hint: Check the path; a relative one starts at the current folder" in err
    latin1 = tmp_path / "latin1.md"
    latin1.write_bytes("Caf\xe9".encode("latin-1"))
    code, _, err = run(capsys, live_server, *argv, str(latin1))
    assert code == exit_codes.FAILURE and "not UTF-8 text" in err and "Errno" not in err


def test_an_invalid_value_is_not_sent_to_the_api_docs(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """The server's "See the request schema at /api/docs." reached people typing commands
    (a table name with a space, an empty group name); --json keeps the server's text."""
    argv = ["admin", "register-table", "bad name", "--source-type", "files", "--dry-run"]
    code, _, err = run(capsys, live_server, *argv)
    assert code == exit_codes.FAILURE and "Invalid request: id:" in err
    assert "/api/docs" not in err and "--help says what each argument takes" in err
    code, out, _ = run(capsys, live_server, *argv, "--json")
    assert json.loads(out)["error"]["hint"] == "See the request schema at /api/docs."


def test_sync_history_of_a_table_without_runs_says_so(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """A misspelt table ("ordrs") printed an empty table and "(none)", as a table that
    simply never synced would, and nothing else."""
    code, out, _ = run(capsys, live_server, "admin", "sync-history", "ordrs")
    assert code == exit_codes.OK and "No sync runs of 'ordrs'" in out
    assert "agnes admin list-tables" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["admin", "grant", "delete", ""],
        ["admin", "token", "revoke", " "],
        ["admin", "unregister-table", ""],
        ["admin", "marketplace", "remove", ""],
        ["admin", "oauth", "revoke", ""],
        ["admin", "metrics", "delete", "revenue"],  # no name: DELETE .../metrics/revenue/
    ],
)
def test_an_empty_id_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """`agnes admin grant delete ""` sent DELETE /api/admin/grants/, got a redirect and
    printed a traceback (TypeError: 'NoneType' object is not subscriptable)."""
    code, _, err = run(capsys, live_server, *argv)
    assert code == exit_codes.USAGE and "Traceback" not in err
    assert "is empty" in err or "a metric id is category/name" in err


def test_a_token_for_an_empty_user_is_refused(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """`--user ""` (an unset variable in a script) made the token for the caller; the API
    took `{"user": ""}` as no user too."""
    with pytest.raises(SystemExit) as exited:
        main(["admin", "token", "create", "--user", "", "--name", "x", "--token", "t"])
    assert exited.value.code == exit_codes.USAGE and "--user: is empty" in capsys.readouterr().err
    import httpx

    answer = httpx.post(
        f"{live_server.base_url}/api/tokens",
        json={"name": "x", "user": ""},
        headers={"Authorization": f"Bearer {live_server.admin_token}"},
    )
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "argv",
    [
        ["admin", "marketplace", "sync", ""],  # synced every marketplace
        ["admin", "marketplace", "plugins", " "],  # listed every marketplace's plugins
        ["admin", "sync-history", ""],  # '(none)', as for a quiet table
        ["admin", "sync", ""],
        ["snapshot", "create", "orders", "--select", "", "--as", "x"],  # pydantic's words
        ["snapshot", "create", "", "--select", "*", "--as", "x"],  # 'table_id: String ...'
        ["snapshot", "create", "orders", "--select", "*", "--as", ""],  # 'needs --as NAME'
        ["notebook", "export", "--session", ""],  # 'no steps for that window'
    ],
)
def test_an_empty_value_for_an_optional_or_named_argument_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """An empty SLUG (a script's unset variable) was read as none given, and `agnes admin
    marketplace sync ""` synced every marketplace; other empty values reached the server
    and came back in its schema's words. Each is refused before anything is sent."""
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, before any request
        run(capsys, live_server, *argv)
    err = capsys.readouterr().err
    assert exited.value.code == exit_codes.USAGE and "Traceback" not in err
    assert "is empty: give" in err and "String should" not in err and "List should" not in err


def test_token_lifetime_and_grant_arguments_are_bounded_before_the_server(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    """--expires-days 4000 was sent and refused in the API's words ('expires_in_days:
    Input should be less than or equal to 3650'), an empty grant resource as
    'resource_id: String should have at least 1 character'; both are usage errors now,
    bounded as the server bounds them."""
    from agnes_mcp.access_admin import MAX_TOKEN_DAYS
    from cli.main import TOKEN_DAYS_MAX

    assert TOKEN_DAYS_MAX == MAX_TOKEN_DAYS
    for argv, said in (
        (["admin", "token", "create", "--expires-days", "3651"], "from 1 to 3,650, not 3,651"),
        (["admin", "grant", "create", "Analysts", "table", ""], "resource_id: is empty"),
        (["admin", "grant", "create", " ", "table", "orders"], "group: is empty"),
    ):
        with pytest.raises(SystemExit) as exited:
            run(capsys, live_server, *argv)
        err = capsys.readouterr().err
        assert exited.value.code == exit_codes.USAGE and said in err, err
        assert "Input should" not in err and "String should" not in err


def test_a_file_that_is_not_utf8_is_refused_naming_it(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer, tmp_path: Path
) -> None:
    """`--query @daily.sql` of a file saved as Latin-1 printed UnicodeDecodeError's
    traceback, naming no file."""
    latin = tmp_path / "daily.sql"
    latin.write_bytes("SELECT 1 -- café\n".encode("latin-1"))
    argv = ["admin", "register-table", "daily", "--source-type", "files"]
    code, _, err = run(capsys, live_server, *argv, "--query", f"@{latin}", "--dry-run")
    assert code == exit_codes.FAILURE and "Traceback" not in err
    assert f"error: {latin}: not UTF-8 text (the byte 0xE9 at byte 16)" in err
    assert "hint: Save it as UTF-8 text" in err
