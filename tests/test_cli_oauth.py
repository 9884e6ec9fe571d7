"""``agnes admin oauth list|revoke`` against a live server over HTTP: JSON and tables,
filters, exit codes, and a revoked grant refused at /mcp while the user's PAT works."""

from __future__ import annotations

import json

import pytest

from agnes_mcp.oauth.token_service import IssuedTokens
from agnes_mcp.services import Services
from agnes_mcp.store.users import User
from cli import exit_codes
from cli.main import main
from tests.conftest import LiveServer, add_user, token_for
from tests.mcp_raw import INITIALIZE, MCP_HEADERS


def run(
    capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str, token: str | None = None
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv, "--server-url", server.base_url, "--token", token or server.admin_token])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], server: LiveServer, *argv: str) -> dict:
    code, out, err = run(capsys, server, *argv, "--json")
    assert code == exit_codes.OK, err or out
    return json.loads(out)


def start_grant(services: Services, user: User, client: str) -> IssuedTokens:
    return services.oauth.start_grant(
        user_id=user.id,
        client_id=f"cli-{client.lower()}",
        client_name=client,
        scopes=["data"],
        resource=services.settings.base_url + "/mcp",
    )


def mcp_status(server: LiveServer, token: str) -> int:
    with server.client(token) as client:
        return client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code


def test_list_then_revoke_a_grant(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    services = live_server.services
    user, other = add_user(services), add_user(services)
    pat = token_for(services, user)
    issued = start_grant(services, user, "Claude")
    start_grant(services, other, "Cursor")

    listed = run_json(capsys, live_server, "admin", "oauth", "list", "--user", user.email)
    assert [
        (g["id"], g["client_name"], g["user_email"], g["status"]) for g in listed["grants"]
    ] == [(issued.grant.id, "Claude", user.email, "active")]
    everyone = run_json(capsys, live_server, "admin", "oauth", "list")["grants"]
    assert {user.email, other.email} <= {g["user_email"] for g in everyone}

    revoked = run_json(capsys, live_server, "admin", "oauth", "revoke", issued.grant.id)
    assert revoked["id"] == issued.grant.id and revoked["status"] == "revoked"
    assert services.oauth.grant(issued.grant.id).revoked_at is not None
    assert mcp_status(live_server, issued.access_token) == 401
    assert mcp_status(live_server, pat) == 200  # the user's PAT keeps working

    active = run_json(capsys, live_server, "admin", "oauth", "list", "--user", user.id, "--active")
    assert active["grants"] == []


def test_human_output_is_a_table_and_a_message(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    user = add_user(live_server.services)
    issued = start_grant(live_server.services, user, "Zed\x1b[31m")
    code, out, _ = run(capsys, live_server, "admin", "oauth", "list", "--user", user.email)
    assert code == exit_codes.OK
    assert "Client" in out and "Last used" in out and issued.grant.id in out
    assert user.email in out and "active" in out
    assert "\x1b" not in out  # a client's name cannot drive the terminal
    code, out, _ = run(capsys, live_server, "admin", "oauth", "revoke", issued.grant.id)
    assert code == exit_codes.OK
    assert f"OAuth grant {issued.grant.id}" in out and "revoked" in out and "\x1b" not in out
    assert "already" not in out
    code, out, _ = run(capsys, live_server, "admin", "oauth", "revoke", issued.grant.id)
    assert code == exit_codes.OK and "was already revoked" in out and "nothing changed" in out


@pytest.mark.parametrize(
    ("argv", "error_code"),
    [
        (["admin", "oauth", "revoke", "oag_nothing_here"], "oauth_grant_not_found"),
        (["admin", "oauth", "list", "--user", "nobody@example.com"], "user_not_found"),
        (["admin", "oauth", "revoke", "../../users/x"], "route_not_found"),  # one path segment
    ],
)
def test_errors_exit_1_with_their_code(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer, argv: list[str], error_code: str
) -> None:
    code, out, _ = run(capsys, live_server, *argv, "--json")
    assert code == exit_codes.FAILURE
    assert json.loads(out)["error"]["code"] == error_code


def test_analysts_are_refused_with_exit_4(
    capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> None:
    analyst = token_for(live_server.services, add_user(live_server.services))
    code, _, err = run(capsys, live_server, "admin", "oauth", "list", token=analyst)
    assert code == exit_codes.AUTH and "not an admin" in err
