"""``agnes admin marketplace add|list|sync|remove|plugins`` against a live server over
HTTP: JSON and tables, a sync waited for with its outcome and exit code, refusals with
their codes, and analysts refused. Plugins are seeded through the store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.resource_types import ResourceType
from cli import exit_codes
from cli.main import main
from tests.conftest import LiveServer, add_user, running_server, token_for
from tests.git_upstream import UpstreamRepo, sample_marketplace
from tests.test_api_marketplaces import seed_plugins

_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("marketplaces-cli") / "data"
    with running_server(
        data, marketplace={"allow_local": True, "token_envs": ["NOT_SET_ANYWHERE"]}
    ) as live:
        yield live


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


def new_slug() -> str:
    return f"cli-{next(_names)}"


def test_add_then_list(
    capsys: pytest.CaptureFixture[str], server: LiveServer, tmp_path: Path
) -> None:
    slug = new_slug()
    argv = ["admin", "marketplace", "add", slug, str(tmp_path / "plugins.git")]
    code, out, _ = run(
        capsys, server, *argv, "--ref", "main", "--token-env", "NOT_SET_ANYWHERE", "--no-sync"
    )
    assert code == exit_codes.OK
    assert f"Added marketplace '{slug}'" in out
    assert f"agnes admin marketplace sync {slug}" in out
    assert "NOT_SET_ANYWHERE is not set in the server's environment" in out
    stored = server.services.marketplaces.get(slug)
    assert (stored.ref, stored.token_env, stored.last_sync_at) == ("main", "NOT_SET_ANYWHERE", None)

    listed = run_json(capsys, server, "admin", "marketplace", "list")["marketplaces"]
    (mine,) = [m for m in listed if m["slug"] == slug]
    assert mine["token_env_set"] is False and mine["state"] == "idle"
    code, out, _ = run(capsys, server, "admin", "marketplace", "list")
    assert code == exit_codes.OK
    assert slug in out and "Token env" in out and "NOT_SET_ANYWHERE (NOT SET)" in out


def test_refusals_exit_1_with_their_code_and_echo_no_secret(
    capsys: pytest.CaptureFixture[str], server: LiveServer
) -> None:
    url = "https://ada:ghp_S3cretValue@git.example.com/team/plugins.git"
    code, out, _ = run(capsys, server, "admin", "marketplace", "add", new_slug(), url, "--json")
    assert code == exit_codes.FAILURE
    error = json.loads(out)["error"]
    assert error["code"] == "marketplace_url_refused" and "S3cretValue" not in out
    code, out, _ = run(capsys, server, "admin", "marketplace", "remove", "nothing-here", "--json")
    assert code == exit_codes.FAILURE
    assert json.loads(out)["error"]["code"] == "marketplace_not_found"


def test_sync_waits_and_reports_a_failure_with_exit_1(
    capsys: pytest.CaptureFixture[str], server: LiveServer, tmp_path: Path
) -> None:
    slug = new_slug()
    missing = tmp_path / "no-such-repo.git"
    run_json(capsys, server, "admin", "marketplace", "add", slug, str(missing), "--no-sync")
    code, out, err = run(capsys, server, "admin", "marketplace", "sync", slug, "--json")
    assert code == exit_codes.FAILURE, err
    (result,) = json.loads(out)["marketplaces"]
    assert result["slug"] == slug and result["state"] == "idle"
    assert result["last_sync_outcome"] == "failed" and result["last_sync_error"]
    assert server.services.marketplaces.get(slug).last_sync_outcome == "failed"

    code, out, err = run(capsys, server, "admin", "marketplace", "sync", slug)
    assert code == exit_codes.FAILURE
    assert slug in out and "failed" in out and f"Syncing {slug}" in err


def test_sync_waits_for_a_good_sync_and_exits_0(
    capsys: pytest.CaptureFixture[str], server: LiveServer, tmp_path: Path
) -> None:
    upstream = UpstreamRepo(tmp_path / "upstream")
    commit = sample_marketplace(upstream)
    slug = new_slug()
    run_json(capsys, server, "admin", "marketplace", "add", slug, str(upstream.path), "--no-sync")
    code, out, err = run(capsys, server, "admin", "marketplace", "sync", slug)
    assert code == exit_codes.OK, out + err
    assert slug in out and "ok" in out and commit[:12] in out
    stored = server.services.marketplaces.get(slug)
    assert (stored.last_sync_outcome, stored.good_commit, stored.plugins) == ("ok", commit, 2)
    plugins = run_json(capsys, server, "admin", "marketplace", "plugins", slug)["plugins"]
    assert [p["grant_id"] for p in plugins] == [f"{slug}/notes", f"{slug}/sql-review"]


def test_sync_no_wait_only_queues(
    capsys: pytest.CaptureFixture[str], server: LiveServer, tmp_path: Path
) -> None:
    slug = new_slug()
    run_json(
        capsys, server, "admin", "marketplace", "add", slug, str(tmp_path / "r.git"), "--no-sync"
    )
    code, out, _ = run(capsys, server, "admin", "marketplace", "sync", slug, "--no-wait")
    assert code == exit_codes.OK and out.strip() == f"Queued: {slug}."
    future = server.services.marketplaces.future(slug)
    if future is not None:
        future.result(timeout=120)
    code, out, _ = run(capsys, server, "admin", "marketplace", "sync", "--no-wait", "--json")
    assert code == exit_codes.OK and slug in json.loads(out)["queued"]


def test_plugins_show_grant_ids_and_groups_then_remove(
    capsys: pytest.CaptureFixture[str], server: LiveServer, tmp_path: Path
) -> None:
    services = server.services
    slug = new_slug()
    run_json(
        capsys, server, "admin", "marketplace", "add", slug, str(tmp_path / "p.git"), "--no-sync"
    )
    seed_plugins(services, slug, "sql-helper", "dashboards")
    group = services.groups.add(f"Plugin users {next(_names)}")
    services.grants.add(group.id, ResourceType.MARKETPLACE_PLUGIN, f"{slug}/sql-helper")

    plugins = run_json(capsys, server, "admin", "marketplace", "plugins", slug)["plugins"]
    assert [(p["grant_id"], p["groups"]) for p in plugins] == [
        (f"{slug}/dashboards", []),
        (f"{slug}/sql-helper", [group.name]),
    ]
    code, out, _ = run(capsys, server, "admin", "marketplace", "plugins")
    assert code == exit_codes.OK
    assert f"{slug}/sql-helper" in out and group.name in out and "Granted to" in out
    assert "agnes admin grant create GROUP marketplace_plugin GRANT_ID" in out

    code, out, _ = run(capsys, server, "admin", "marketplace", "remove", slug)
    assert code == exit_codes.OK
    assert f"Removed marketplace '{slug}': 2 plugins no longer" in out and "1 grant removed" in out
    assert services.grants.all(group_id=group.id) == []
    listed = run_json(capsys, server, "admin", "marketplace", "list")["marketplaces"]
    assert slug not in [m["slug"] for m in listed]


def test_analysts_are_refused_with_exit_4(
    capsys: pytest.CaptureFixture[str], server: LiveServer
) -> None:
    analyst = token_for(server.services, add_user(server.services))
    for argv in (["list"], ["sync"], ["plugins"], ["remove", "x"]):
        code, _, err = run(capsys, server, "admin", "marketplace", *argv, token=analyst)
        assert code == exit_codes.AUTH and "not an admin" in err
