"""Jira webhooks at the wire: real signatures over real HTTP against a running server,
the issue fetched from a local Jira that speaks REST v3, rows read back through
``POST /api/query`` as an analyst granted the jira tables."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from agnes_mcp.webhook_apply import SourceWorker
from agnes_mcp.webhook_deliveries import SeenDeliveries
from agnes_sync.retry import LONGEST_ASKED
from tests.conftest import LiveServer, add_user, pull_into_workspace, running_server, token_for
from tests.fake_jira import TOKEN, FakeJira, FakeJiraServer, signed

SECRET = "webhook-secret-for-tests"  # the value of $JIRA_TEST_SECRET
TABLES = {
    "jira_issues": "issues",
    "jira_comments": "comments",
    "jira_changelog": "changelog",
    "jira_deleted_issues": "deleted_issues",
}
DEADLINE_SECONDS = 30


@dataclass
class Site:
    live: LiveServer
    jira: FakeJira
    analyst_token: str

    def post(
        self, body: bytes, *, source: str = "jira_src", delivery: str | None = None, **headers: str
    ) -> httpx.Response:
        sent = {**signed(body, SECRET, delivery), **headers}
        return httpx.post(
            f"{self.live.base_url}/webhooks/jira/{source}", content=body, headers=sent, timeout=30
        )

    def deliver(self, event: str, key: str, *, delivery: str | None = None) -> httpx.Response:
        return self.post(self.jira.webhook_body(event, key), delivery=delivery)

    def ask(self, sql: str) -> httpx.Response:
        return httpx.post(
            f"{self.live.base_url}/api/query",
            json={"sql": sql},
            headers={"Authorization": f"Bearer {self.analyst_token}"},
            timeout=30,
        )

    def query(self, sql: str) -> list[list[Any]]:
        response = self.ask(sql)
        assert response.status_code == 200, response.text
        rows: list[list[Any]] = response.json()["rows"]
        return rows

    def wait_for(self, sql: str, done: Callable[[list[list[Any]]], bool]) -> list[list[Any]]:
        """Poll ``sql`` until ``done(rows)``, with a deadline (the work runs in the background;
        until a table's first rows arrive, querying it is refused)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            response = self.ask(sql)
            rows = response.json().get("rows") if response.status_code == 200 else None
            if rows is not None and done(rows):
                return list(rows)
            if time.monotonic() > deadline:
                raise AssertionError(f"not done in {DEADLINE_SECONDS}s: {sql} -> {response.text}")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("jira-webhooks")
    (root / "files").mkdir()
    (root / "files" / "a.csv").write_text("x\n1\n")
    with (
        pytest.MonkeyPatch.context() as env,
        FakeJiraServer(embedded_comments=5, comment_page_cap=40) as jira,
    ):
        env.setenv("JIRA_TEST_TOKEN", TOKEN)
        env.setenv("JIRA_TEST_SECRET", SECRET)
        env.delenv("JIRA_UNSET_SECRET", raising=False)
        sources = {
            "jira_src": {
                "connector": "jira",
                "options": jira.options(
                    webhook_secret_env="JIRA_TEST_SECRET",
                    projects=["PROJ"],
                    census_hours=0,
                    overlap_minutes=0,
                ),
            },
            "nosecret": {
                "connector": "jira",
                "options": jira.options(webhook_secret_env="JIRA_UNSET_SECRET", table_prefix="x_"),
            },
            "files": {"connector": "files", "options": {"path": str(root / "files")}},
        }
        with running_server(root / "data", sources=sources, scheduler_enabled=False) as live:
            admin = live.client(live.admin_token)
            for table_id, kind in {**TABLES, "jira_issuelinks": "issuelinks"}.items():
                response = admin.post(
                    "/api/admin/register-table",
                    params={"sync": "false"},
                    json={"id": table_id, "source_type": "jira_src", "source_table": kind},
                )
                assert response.status_code == 201, response.text
            group = admin.post("/api/admin/groups", json={"name": "jira-readers"}).json()
            for table_id in TABLES:  # issuelinks stays ungranted
                response = admin.post(
                    "/api/admin/grants",
                    json={
                        "group": group["name"],
                        "resource_type": "table",
                        "resource_id": table_id,
                    },
                )
                assert response.status_code == 201, response.text
            analyst = add_user(live.services, groups=(group["id"],))
            yield Site(live, jira.fake, token_for(live.services, analyst))


# --- refusals ------------------------------------------------------------------------------


def test_an_unknown_source_or_connector_is_404(site: Site) -> None:
    body = b'{"webhookEvent": "jira:issue_updated"}'
    for path in ("/webhooks/jira/nope", "/webhooks/files/jira_src", "/webhooks/files/files"):
        response = httpx.post(
            site.live.base_url + path, content=body, headers=signed(body, SECRET, "x")
        )
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "webhook_source_not_found"


def test_without_a_secret_configured_deliveries_get_503(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """The sender learns there is no secret; the variable to set is the operator's to
    read, in the log."""
    key = site.jira.create_issue("PROJ", "No secret")
    with caplog.at_level(logging.WARNING, logger="agnes.connectors.jira"):
        response = site.post(site.jira.webhook_body("jira:issue_created", key), source="nosecret")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "webhook_not_configured"
    assert "JIRA_UNSET_SECRET" not in response.text
    assert any("$JIRA_UNSET_SECRET" in r.getMessage() for r in caplog.records)


def test_a_body_nested_too_deeply_is_refused_not_a_crash(site: Site) -> None:
    body = b'{"a": ' * 100_000 + b"1" + b"}" * 100_000
    response = site.post(body)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.text


def test_a_missing_or_wrong_signature_is_401(site: Site) -> None:
    key = site.jira.create_issue("PROJ", "Signed")
    body = site.jira.webhook_body("jira:issue_created", key)
    url = f"{site.live.base_url}/webhooks/jira/jira_src"
    missing = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
    wrong = httpx.post(url, content=body, headers=signed(body, "another-secret", "w1"))
    tampered = httpx.post(url, content=body + b" ", headers=signed(body, SECRET, "w2"))
    for response in (missing, wrong, tampered):
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "webhook_signature_invalid"
        assert "www-authenticate" not in response.headers  # not a bearer-token refusal
    # a refused delivery is not remembered: the genuine one with the same id is accepted
    assert site.post(body, delivery="w1").status_code == 202


def test_a_huge_body_is_413(site: Site) -> None:
    body = b'{"webhookEvent": "jira:issue_updated", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = site.post(body, delivery="huge")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_signed_payload_with_a_bad_key_is_400_and_builds_no_path(site: Site) -> None:
    body = b'{"webhookEvent": "jira:issue_updated", "issue": {"id": "1", "key": "../../etc-1"}}'
    response = site.post(body, delivery="bad-key")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_payload_invalid"
    assert not any("etc" in r[1] for r in site.jira.requests)


def test_the_host_guard_still_applies(site: Site) -> None:
    body = site.jira.webhook_body("jira:issue_created", site.jira.create_issue("PROJ", "Host"))
    response = site.post(body, delivery="host", Host="evil.example")
    assert response.status_code == 421


def test_other_projects_and_unused_events_are_acknowledged_and_ignored(site: Site) -> None:
    other = site.jira.create_issue("OTHER", "Not kept")
    response = site.deliver("jira:issue_created", other)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    response = site.post(b'{"webhookEvent": "sprint_started", "sprint": {"id": 1}}')
    assert response.status_code == 200 and response.json()["status"] == "ignored"


# --- deliveries become rows -----------------------------------------------------------------


def test_a_created_issue_is_queryable_with_all_its_comments(site: Site) -> None:
    key = site.jira.create_issue("PROJ", "Fresh issue", labels=["ui", "urgent"])
    for n in range(105):  # past the 5 the issue embeds and several pages of 40
        site.jira.add_comment(key, f"comment {n}")
    response = site.deliver("jira:issue_created", key, delivery="created-1")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    rows = site.wait_for(
        f"SELECT summary, status, labels FROM jira_issues WHERE key = '{key}'", bool
    )
    assert rows == [["Fresh issue", "To Do", ["ui", "urgent"]]]
    count = site.query(f"SELECT count(*) FROM jira_comments WHERE issue_key = '{key}'")
    assert count == [[105]]
    assert site.query(
        f"SELECT body FROM jira_comments WHERE issue_key = '{key}' AND body = 'comment 104'"
    )


def test_a_replayed_delivery_changes_nothing(site: Site) -> None:
    key = site.jira.create_issue("PROJ", "Replayed")
    body = site.jira.webhook_body("jira:issue_created", key)
    assert site.post(body, delivery="replay-1").status_code == 202
    sql = f"SELECT summary, synced_at FROM jira_issues WHERE key = '{key}'"
    before = site.wait_for(sql, bool)
    fetches = len(site.jira.calls(f"/rest/api/3/issue/{key}"))
    site.jira.update_issue(key, summary="changed since")
    replay = site.post(body, delivery="replay-1")
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert len(site.jira.calls(f"/rest/api/3/issue/{key}")) == fetches
    assert site.query(sql) == before


def test_fifty_concurrent_deliveries_for_one_issue_the_last_state_wins(site: Site) -> None:
    key = site.jira.create_issue("PROJ", "Busy issue")
    start = threading.Barrier(50)

    def one(n: int) -> int:
        start.wait()
        with site.jira.lock:  # Jira changes the issue, then sends the event
            site.jira.add_comment(key, f"concurrent {n}")
            site.jira.update_issue(key, summary=f"version {n}")
            body = site.jira.webhook_body("comment_created", key)
        return site.post(body, delivery=f"busy-{n}").status_code

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, range(50)))
    assert statuses == [202] * 50
    final = site.jira.issue_by(key)
    assert final is not None
    last_summary = final["fields"]["summary"]
    site.wait_for(
        f"SELECT summary FROM jira_issues WHERE key = '{key}'",
        lambda rows: rows == [[last_summary]],
    )
    comments = site.wait_for(
        f"SELECT count(*), count(DISTINCT comment_id) FROM jira_comments WHERE issue_key = '{key}'",
        lambda rows: rows == [[50, 50]],
    )
    assert comments == [[50, 50]]  # no lost update, no duplicate row
    assert site.query(f"SELECT count(*) FROM jira_issues WHERE key = '{key}'") == [[1]]
    history = site.query(f"SELECT count(*) FROM jira_changelog WHERE issue_key = '{key}'")
    assert history == [[50]]


def test_a_worklog_event_names_the_issue_by_id(site: Site) -> None:
    key = site.jira.create_issue("PROJ", "Logged")
    assert site.deliver("worklog_created", key).status_code == 202
    site.wait_for(f"SELECT key FROM jira_issues WHERE key = '{key}'", bool)


def test_a_deleted_issue_is_tombstoned_with_its_children(site: Site) -> None:
    key = site.jira.create_issue("PROJ", "Doomed")
    site.jira.add_comment(key, "last words")
    site.jira.update_issue(key, status="In Progress")
    assert site.deliver("jira:issue_created", key, delivery="doomed-1").status_code == 202
    site.wait_for(f"SELECT issue_key FROM jira_comments WHERE issue_key = '{key}'", bool)
    gone = site.jira.delete_issue(key)
    body = site.jira.webhook_body("jira:issue_deleted", key, issue=gone)
    assert site.post(body, delivery="doomed-2").status_code == 202
    site.wait_for(
        f"SELECT key, summary, detected_by FROM jira_deleted_issues WHERE key = '{key}'",
        lambda rows: rows == [[key, "Doomed", "webhook"]],
    )
    for table, column in (
        ("jira_issues", "key"),
        ("jira_comments", "issue_key"),
        ("jira_changelog", "issue_key"),
    ):
        assert site.query(f"SELECT count(*) FROM {table} WHERE {column} = '{key}'") == [[0]]
    # a late update event for the deleted issue does not bring it back
    late = site.post(site.jira.webhook_body("jira:issue_updated", key, issue=gone))
    assert late.status_code == 202
    marker = site.jira.create_issue("PROJ", "Marker")  # the worker takes work in order
    assert site.deliver("jira:issue_created", marker).status_code == 202
    site.wait_for(f"SELECT key FROM jira_issues WHERE key = '{marker}'", bool)
    assert site.query(f"SELECT count(*) FROM jira_issues WHERE key = '{key}'") == [[0]]
    assert site.query(f"SELECT count(*) FROM jira_deleted_issues WHERE key = '{key}'") == [[1]]


def test_a_sync_catches_missed_webhooks_and_the_census_removes_deleted_issues(
    site: Site,
) -> None:
    admin = site.live.client(site.live.admin_token)
    missed = site.jira.create_issue("PROJ", "Never announced")
    result = admin.post("/api/sync/trigger", json={"table_id": "jira_issues"}).json()
    assert [r["status"] for r in result["results"]] == ["ok"], result
    assert site.query(f"SELECT summary FROM jira_issues WHERE key = '{missed}'") == [
        ["Never announced"]
    ]
    site.jira.update_issue(missed, summary="Changed quietly")
    site.jira.delete_issue(site.jira.create_issue("PROJ", "Created and deleted quietly"))
    vanished = site.jira.create_issue("PROJ", "Vanishes")
    admin.post("/api/sync/trigger", json={"table_id": "jira_issues"})
    site.jira.delete_issue(vanished)
    result = admin.post("/api/sync/trigger", json={"table_id": "jira_comments"}).json()
    assert [r["status"] for r in result["results"]] == ["ok"], result
    assert site.query(f"SELECT summary FROM jira_issues WHERE key = '{missed}'") == [
        ["Changed quietly"]
    ]
    # census: the issue deleted while no webhook arrived left the tables for the tombstones
    assert site.query(f"SELECT count(*) FROM jira_issues WHERE key = '{vanished}'") == [[0]]
    assert site.query(f"SELECT detected_by FROM jira_deleted_issues WHERE key = '{vanished}'") == [
        ["census"]
    ]


def test_the_tables_are_in_the_manifest_and_pulled(site: Site, tmp_path: Path) -> None:
    key = site.jira.create_issue("PROJ", "Pulled to a laptop")
    assert site.deliver("jira:issue_created", key).status_code == 202
    site.wait_for(f"SELECT key FROM jira_issues WHERE key = '{key}'", bool)
    served = site.query("SELECT count(*) FROM jira_issues")
    workspace = pull_into_workspace(site.live.base_url, site.analyst_token, tmp_path / "ws")
    shards = sorted((workspace / ".agnes" / "data" / "jira_issues").rglob("*.parquet"))
    assert shards and all("created_month=" in str(p) for p in shards)
    listed = ", ".join(f"'{p}'" for p in shards)
    pulled = duckdb.sql(f"SELECT count(*) FROM read_parquet([{listed}])").fetchall()
    assert [list(r) for r in pulled] == served
    assert not (workspace / ".agnes" / "data" / "jira_issuelinks").exists()  # not granted


@pytest.mark.parametrize("asked", [1e11, float("inf"), float("nan")])
def test_work_retried_later_waits_a_day_at_most(asked: float) -> None:
    """Work a source asked to retry after centuries was queued that far: the worker's
    wait for it is more than any timer takes (OverflowError), the worker stopped, and
    no later delivery of the source was applied until a restart."""
    worker = SourceWorker("jira_src", None)  # type: ignore[arg-type]  # no work is run
    started = time.monotonic()
    worker._later_try(["PROJ-1"], {}, asked)
    due = worker._later[0][0]
    assert started <= due <= time.monotonic() + LONGEST_ASKED


def test_accepted_delivery_ids_survive_a_restart_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "state" / "webhooks" / "src.seen"
    seen = SeenDeliveries(path, retention_hours=1)
    assert seen.first_time("a") and seen.first_time("b")
    assert not seen.first_time("a")
    again = SeenDeliveries(path, retention_hours=1)  # a restarted server
    assert not again.first_time("b") and again.first_time("c")
    path.write_text("1.000 ancient\n" + path.read_text())
    assert SeenDeliveries(path, retention_hours=1).first_time("ancient")  # long expired
