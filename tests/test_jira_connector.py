"""The jira connector against a local Jira that speaks REST v3 (a real socket): backfill,
reconcile and census, shards and the extract contract, failures, webhook receipts."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from agnes_sync.connector import (
    SourceContext,
    TableRequest,
    WebhookDelivery,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from agnes_sync.contract import ExtractWriter
from agnes_sync.errors import (
    InvalidTableSpec,
    SourceDataError,
    TerminalSyncError,
    TransientSyncError,
)
from agnes_sync.extract_reader import read_extract
from agnes_sync.orchestrator import Orchestrator
from connectors.jira.connector import JiraConnector
from connectors.jira.reconcile import STATE_FILE, SyncState, jql_since
from connectors.jira.rows import adf_text, snapshot
from connectors.jira.webhook import IssueWork, sign
from tests.fake_jira import TOKEN, FakeJira, FakeJiraServer, signed

SECRET = "connector-test-secret"
JAN, FEB = datetime(2026, 1, 10, 9, tzinfo=UTC), datetime(2026, 2, 20, 17, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FakeJiraServer]:
    with FakeJiraServer(
        embedded_comments=5, comment_page_cap=50, embedded_histories=2, search_page_cap=3
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIRA_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("JIRA_TEST_SECRET", SECRET)


class Source:
    """A connector on the fake and the extract it writes."""

    def __init__(self, server: FakeJiraServer, root: Path, **options: Any) -> None:
        self.jira: FakeJira = server.fake
        self.connector = JiraConnector(
            SourceContext(
                "jira_src",
                server.options(webhook_secret_env="JIRA_TEST_SECRET", **options),
                root,
            )
        )
        self.sleeps: list[float] = []
        self.connector.client.sleep = self.sleeps.append
        self.writer = ExtractWriter(root / "extracts", "jira_src")

    def sync(self, table: str = "jira_issues") -> Any:
        return self.connector.extract(TableRequest(id=table), self.writer)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.writer.paths.db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def receive(self, body: bytes, **headers: str) -> Any:
        merged = {k.lower(): v for k, v in {**signed(body, SECRET, "d-1"), **headers}.items()}
        return self.connector.receive_webhook(WebhookDelivery(body, merged))


@pytest.fixture
def source(server: FakeJiraServer, tmp_path: Path) -> Source:
    return Source(server, tmp_path, projects=["PROJ"], census_hours=0, overlap_minutes=0)


# --- the tables ----------------------------------------------------------------------------


def test_lists_and_describes_its_four_tables(source: Source) -> None:
    offered = {t.suggested_id: t.source_table for t in source.connector.list_tables()}
    assert offered == {
        "jira_issues": "issues",
        "jira_comments": "comments",
        "jira_changelog": "changelog",
        "jira_issuelinks": "issuelinks",
        "jira_deleted_issues": "deleted_issues",
    }
    columns = {c.name: c.type for c in source.connector.describe_table(TableRequest("jira_issues"))}
    assert columns["key"] == "VARCHAR" and columns["labels"] == "VARCHAR[]"
    assert columns["created"] == "TIMESTAMP WITH TIME ZONE"
    tombstones = source.connector.describe_table(TableRequest("jira_deleted_issues"))
    assert {c.name for c in tombstones} >= {"issue_id", "key", "deleted_at", "detected_by"}
    with pytest.raises(InvalidTableSpec, match="fixed names"):
        source.connector.describe_table(TableRequest("issues"))
    with pytest.raises(InvalidTableSpec):
        source.connector.describe_table(TableRequest("jira_issues", source_table="comments"))


def test_options_are_checked(server: FakeJiraServer, tmp_path: Path) -> None:
    for bad in ({"projects": ["proj"]}, {"projects": ["A) OR (1=1"]}, {"token_env": "X Y"}):
        with pytest.raises(InvalidTableSpec, match="invalid options"):
            JiraConnector(SourceContext("j", {**server.options(), **bad}, tmp_path))
    prefixed = JiraConnector(SourceContext("j", server.options(table_prefix="site2_"), tmp_path))
    assert {t.suggested_id for t in prefixed.list_tables()} == {
        "site2_issues",
        "site2_comments",
        "site2_changelog",
        "site2_issuelinks",
        "site2_deleted_issues",
    }


# --- backfill ------------------------------------------------------------------------------


def test_first_sync_backfills_every_kept_issue_in_monthly_shards(source: Source) -> None:
    jira = source.jira
    a = jira.create_issue("PROJ", "January issue", created=JAN)
    b = jira.create_issue("PROJ", "February issue", created=FEB)
    jira.create_issue("OTHER", "not kept", created=FEB)
    for n in range(130):
        jira.add_comment(a, f"note {n}")
    for n in range(5):
        jira.update_issue(b, summary=f"February issue v{n}")
    jira.link(a, b)
    extra = [jira.create_issue("PROJ", f"Filler {n}", created=FEB) for n in range(4)]

    published = source.sync("jira_issues")
    assert published.table == "jira_issues" and published.rows == 6
    assert sorted(f.part for f in published.files) == ["2026-01", "2026-02"]
    assert all(f.path.startswith("data/jira_issues/created_month=") for f in published.files)
    issues = source.rows("SELECT key, summary, created_month FROM jira_issues ORDER BY issue_id")
    assert issues[:2] == [(a, "January issue", "2026-01"), (b, "February issue v4", "2026-02")]
    assert {row[0] for row in issues[2:]} == set(extra)
    assert source.rows(f"SELECT count(*) FROM jira_comments WHERE issue_key = '{a}'") == [(130,)]
    assert source.rows(f"SELECT count(*) FROM jira_changelog WHERE issue_key = '{b}'") == [(5,)]
    links = source.rows(
        "SELECT issue_key, direction, relation, linked_issue_key FROM jira_issuelinks ORDER BY 1"
    )
    assert links == [(a, "outward", "blocks", b), (b, "inward", "is blocked by", a)]
    searches = jira.calls("/rest/api/3/search/jql")
    assert searches[0][2]["jql"] == 'project in ("PROJ")'  # the first sync reads everything kept
    assert any("nextPageToken" in call[2] for call in searches)  # and follows the pages
    comment_pages = jira.calls(f"/rest/api/3/issue/{a}/comment")
    assert [c[2]["startAt"] for c in comment_pages] == ["0", "50", "100"]
    assert jira.calls(f"/rest/api/3/issue/{b}/changelog")  # histories past those embedded
    # the extract is a valid one, and the orchestrator serves it
    extract = read_extract(source.writer.paths, strict=True)
    assert set(extract.tables) == {
        "jira_issues",
        "jira_comments",
        "jira_changelog",
        "jira_issuelinks",
        "jira_deleted_issues",
    }
    orchestrator = Orchestrator(source.writer.paths.root.parent.parent)
    assert orchestrator.rebuild().problems == []


def test_custom_fields_come_with_the_names_the_site_gives_them(source: Source) -> None:
    """custom_fields is keyed by id (customfield_10016): an analyst looking for "story
    points" had no way to find it; the names come with each issue (expand=names)."""
    sized = source.jira.create_issue(
        "PROJ", "Sized", customfield_10016=5, customfield_10020=[{"name": "Sprint 7"}]
    )
    plain = source.jira.create_issue("PROJ", "No custom fields")
    source.sync()
    rows = dict(source.rows("SELECT key, custom_field_names FROM jira_issues"))
    assert json.loads(rows[sized]) == {
        "customfield_10016": "Story point estimate",
        "customfield_10020": "Sprint",
    }
    assert rows[plain] is None  # customfield_10010 is empty: neither value nor name
    found = source.rows(
        "SELECT json_extract_string(custom_fields, '$.' || k) FROM jira_issues, "
        "(SELECT unnest(json_keys(custom_field_names)) AS k FROM jira_issues WHERE key = "
        f"'{sized}') AS n WHERE key = '{sized}' AND "
        "json_extract_string(custom_field_names, '$.' || k) = 'Story point estimate'"
    )
    assert found == [("5",)]


def test_text_comes_out_of_atlassian_document_format() -> None:
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Hello "},
                    {"type": "mention", "attrs": {"text": "@Ann"}},
                ],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "line"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "two"},
                ],
            },
        ],
    }
    assert adf_text(doc) == "Hello @Ann\nline\ntwo"
    assert adf_text("plain v2 text") == "plain v2 text" and adf_text(None) is None


def _text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def _para(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def test_rich_text_keeps_every_block_apart_and_its_words() -> None:
    """Each block node ends a line, whatever its type (task and decision items, media
    captions, cards, expands, nodes ADF adds later); a table's cells are tab-separated."""
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "taskList",
                "content": [
                    {
                        "type": "taskItem",
                        "attrs": {"state": "TODO"},
                        "content": [_text("Buy milk")],
                    },
                    {"type": "taskItem", "attrs": {"state": "DONE"}, "content": [_text("Walk")]},
                ],
            },
            {
                "type": "decisionList",
                "content": [{"type": "decisionItem", "content": [_text("Use Rust")]}],
            },
            {
                "type": "mediaSingle",
                "content": [
                    {"type": "media", "attrs": {"id": "x", "type": "file"}},
                    {"type": "caption", "content": [_text("Figure 1")]},
                ],
            },
            _para(_text("Due "), {"type": "date", "attrs": {"timestamp": "1767225600000"}}),
            {"type": "blockCard", "attrs": {"url": "https://x.example/1"}},
            {"type": "embedCard", "attrs": {"url": "https://x.example/2", "layout": "center"}},
            {"type": "expand", "attrs": {"title": "Details"}, "content": [_para(_text("Hid"))]},
            {
                "type": "table",
                "content": [
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableHeader", "content": [_para(_text("a"))]},
                            {"type": "tableHeader", "content": [_para(_text("b"))]},
                        ],
                    },
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableCell", "content": [_para(_text("1"))]},
                            {"type": "tableCell", "content": []},
                        ],
                    },
                ],
            },
            {"type": "someFutureBlock", "content": [_text("New")]},
            _para(_text("End")),
        ],
    }
    assert adf_text(doc) == (
        "Buy milk\nWalk\nUse Rust\nFigure 1\nDue 2026-01-01\nhttps://x.example/1\n"
        "https://x.example/2\nDetails\nHid\na\tb\n1\t\nNew\nEnd"
    )


def test_a_sync_reads_only_what_changed_since_the_last_one(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Old")
    source.sync()
    state = SyncState.load(source.writer.paths.root / STATE_FILE)
    assert state.watermark is not None
    source.jira.update_issue(key, summary="Updated without a webhook")
    before = len(source.jira.requests)
    source.sync()
    after = source.jira.requests[before:]
    jql = next(
        c[2]["jql"] for c in after if c[1].endswith("/search/jql") and c[2]["fields"] == "updated"
    )
    zone_time = state.watermark.astimezone(ZoneInfo("America/Los_Angeles"))
    assert jql == f'project in ("PROJ") AND updated >= "{zone_time.strftime("%Y-%m-%d %H:%M")}"'
    assert source.rows(f"SELECT summary FROM jira_issues WHERE key = '{key}'") == [
        ("Updated without a webhook",)
    ]


def test_a_dropped_table_comes_back_whole_at_the_next_sync(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Commented", created=JAN)
    other = source.jira.create_issue("PROJ", "Also commented", created=FEB)
    for target in (key, other):
        source.jira.add_comment(target, f"on {target}")
    source.sync()
    source.writer.drop("jira_comments")  # unregistered: its data and record are gone
    source.jira.add_comment(key, "while unregistered")
    source.connector.apply_webhook([IssueWork("upsert", key, None)], source.writer)
    assert "jira_comments" not in {r[0] for r in source.rows("SELECT table_name FROM _meta")}
    source.sync("jira_comments")  # registered again: a full read
    assert source.rows("SELECT issue_key, count(*) FROM jira_comments GROUP BY 1 ORDER BY 1") == [
        (key, 2),
        (other, 1),
    ]


def test_restricted_comments_are_left_out_unless_kept(
    server: FakeJiraServer, tmp_path: Path
) -> None:
    source = Source(server, tmp_path / "a", projects=["PROJ"], census_hours=0, overlap_minutes=0)
    key = source.jira.create_issue("PROJ", "Mixed audience")
    public = source.jira.add_comment(key, "for everyone")
    role = source.jira.add_comment(key, "devs only", visibility={"type": "role", "value": "Dev"})
    note = source.jira.add_comment(key, "internal note", jsd_public=False)
    shared = source.jira.add_comment(key, "customer reply", jsd_public=True)
    source.sync("jira_comments")
    assert source.rows(
        "SELECT comment_id, visibility, jsd_public FROM jira_comments ORDER BY 1"
    ) == [
        (public, None, None),
        (shared, None, True),
    ]
    kept = Source(
        server,
        tmp_path / "b",
        projects=["PROJ"],
        census_hours=0,
        overlap_minutes=0,
        restricted_comments="keep",
    )
    kept.sync("jira_comments")
    assert kept.rows("SELECT comment_id, visibility, jsd_public FROM jira_comments ORDER BY 1") == [
        (public, None, None),
        (role, "role:Dev", None),
        (note, None, False),
        (shared, None, True),
    ]


def test_changing_the_restricted_comments_rule_reads_every_issue_again(
    server: FakeJiraServer, tmp_path: Path
) -> None:
    """Comments stored under one rule are not left behind under another (nor by an
    upgrade from a version without the rule): the next sync reads every issue again."""
    common: dict[str, Any] = {"projects": ["PROJ"], "census_hours": 0, "overlap_minutes": 0}
    kept = Source(server, tmp_path, restricted_comments="keep", **common)
    key = kept.jira.create_issue("PROJ", "Quiet issue")
    secret = kept.jira.add_comment(key, "admins only", visibility={"type": "group", "value": "a"})
    kept.sync("jira_comments")
    assert kept.rows("SELECT comment_id FROM jira_comments") == [(secret,)]
    # Nothing changed since the last sync, as far as an incremental search can tell.
    state_path = kept.writer.paths.root / STATE_FILE
    state = SyncState.load(state_path)
    state.watermark = datetime.now(UTC) + timedelta(days=1)
    state.save(state_path)
    skipping = Source(server, tmp_path, **common)
    skipping.sync("jira_comments")
    assert skipping.rows("SELECT count(*) FROM jira_comments") == [(0,)]


def test_a_pause_asked_while_fetching_issues_reaches_the_sync(source: Source) -> None:
    source.jira.create_issue("PROJ", "Rate limited")
    source.jira.fail_next(1, status=429, retry_after="120", path_prefix="/rest/api/3/issue/")
    with pytest.raises(TransientSyncError) as refused:
        source.sync()
    assert refused.value.retry_after_seconds == 120


def test_jql_dates_are_written_in_the_accounts_zone_or_widened() -> None:
    moment = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    assert jql_since(moment, "Asia/Tokyo", ["A", "B"]) == (
        'project in ("A", "B") AND updated >= "2026-07-01 21:30"'
    )
    # no zone known: UTC, 14 hours earlier (no offset can then hide an update)
    assert jql_since(moment, None, []) == 'updated >= "2026-06-30 22:30"'
    assert jql_since(None, None, ["A"]) == 'project in ("A")'


def test_a_project_key_that_is_a_jql_reserved_word_syncs(
    server: FakeJiraServer, tmp_path: Path
) -> None:
    source = Source(server, tmp_path, projects=["INT", "PROJ"], census_hours=0, overlap_minutes=0)
    key = source.jira.create_issue("INT", "Integration work")
    source.sync()
    assert source.rows("SELECT key FROM jira_issues") == [(key,)]


def test_without_a_time_zone_the_sync_still_catches_every_update(source: Source) -> None:
    source.jira.myself_available = False
    key = source.jira.create_issue("PROJ", "Zone-less")
    source.sync()
    source.jira.update_issue(key, summary="Still caught")
    source.sync()
    assert source.rows(f"SELECT summary FROM jira_issues WHERE key = '{key}'") == [
        ("Still caught",)
    ]


def test_the_census_tombstones_issues_deleted_without_a_webhook(source: Source) -> None:
    keep = source.jira.create_issue("PROJ", "Kept")
    gone = source.jira.create_issue("PROJ", "Deleted quietly")
    source.jira.add_comment(gone, "a comment")
    source.sync()
    source.jira.delete_issue(gone)
    source.sync("jira_comments")
    assert source.rows("SELECT key FROM jira_issues") == [(keep,)]
    assert source.rows("SELECT count(*) FROM jira_comments") == [(0,)]  # left with the issue
    assert source.rows("SELECT key, summary, detected_by FROM jira_deleted_issues") == [
        (gone, "Deleted quietly", "census")
    ]


def test_the_census_tombstones_only_what_jira_confirms_gone(source: Source) -> None:
    """Search stops listing archived issues (and an issue moved to another project); an
    issue still readable in a kept project is not deleted, one moved away is."""
    keep = source.jira.create_issue("PROJ", "Kept")
    archived = source.jira.create_issue("PROJ", "Archived, still readable")
    moved = source.jira.create_issue("PROJ", "Moved to a project not kept")
    source.sync()
    source.jira.archive_issue(archived)
    source.jira.move_issue(moved, "OTHER")
    source.sync()
    assert source.rows("SELECT key FROM jira_issues ORDER BY key") == sorted([(keep,), (archived,)])
    assert source.rows("SELECT key, detected_by FROM jira_deleted_issues") == [(moved, "census")]
    asked = {
        c[1].rsplit("/", 1)[1]
        for c in source.jira.calls("/rest/api/3/issue/")
        if c[2].get("fields") == "project"
    }
    assert len(asked) == 2  # only the two search no longer listed were checked


@pytest.mark.parametrize(
    "body", ['{"errorMessages": ["Internal server error"]}', "{}", '{"id": "1", "fields": {}}']
)
def test_the_census_tombstones_nothing_on_an_answer_that_is_not_an_issue(
    source: Source, body: str
) -> None:
    """Asked whether an issue search no longer lists is still in a kept project, a 200
    that is not an issue (Jira's errorMessages, a proxy's JSON) read as "in no project":
    the issue was tombstoned as moved away."""
    source.jira.create_issue("PROJ", "Kept")
    archived = source.jira.create_issue("PROJ", "Archived, still readable")
    source.sync()
    source.jira.archive_issue(archived)
    asked = f"/rest/api/3/issue/{source.jira.issue_by(archived)['id']}"  # the census asks by id
    source.jira.fail_next(1, status=200, retry_after=None, path_prefix=asked, raw_body=body)
    with pytest.raises(TransientSyncError, match="not an issue"):
        source.sync()
    assert source.rows("SELECT count(*) FROM jira_deleted_issues") == [(0,)]
    source.sync()
    assert source.rows("SELECT count(*) FROM jira_issues") == [(2,)]
    assert source.rows("SELECT count(*) FROM jira_deleted_issues") == [(0,)]


def test_a_project_the_account_can_no_longer_see_is_kept_and_said(
    server: FakeJiraServer, tmp_path: Path
) -> None:
    """Jira answers 404 alike for a deleted issue and for one the account may not see:
    after losing access to one of two kept projects, the census tombstoned all of that
    project's issues. A project none of whose issues are listed and that the account
    cannot browse keeps its issues, and the issues table's sync says why; a project the
    account still sees but that was emptied is tombstoned as before."""
    source = Source(server, tmp_path, projects=["AAA", "PROJ"], census_hours=0, overlap_minutes=0)
    hidden = [source.jira.create_issue("AAA", f"Secret {i}") for i in range(3)]
    kept = source.jira.create_issue("PROJ", "Visible")
    emptied = source.jira.create_issue("PROJ", "Deleted")
    source.sync()
    source.jira.hidden_projects.add("AAA")
    source.jira.delete_issue(emptied)
    published = source.sync()
    assert source.rows("SELECT key FROM jira_issues ORDER BY key") == sorted(
        [(k,) for k in (*hidden, kept)]
    )
    assert source.rows("SELECT key FROM jira_deleted_issues") == [(emptied,)]
    (said,) = published.notes
    assert "Jira project AAA is no longer visible" in said and "3 stored issue(s)" in said
    assert "$" + source.connector.settings.token_env in said
    assert source.sync("jira_comments").notes == []  # said once, with the issues table
    source.jira.hidden_projects.clear()  # access back: nothing was lost, nothing to say
    assert source.sync().notes == []
    assert len(source.rows("SELECT key FROM jira_issues")) == 4


def test_a_census_that_finds_nothing_wipes_nothing(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Still here")
    source.sync()
    source.jira.delete_issue(key)  # (or the account lost access to the project)
    with pytest.raises(TerminalSyncError, match="census found no issues"):
        source.sync()
    assert source.rows("SELECT key FROM jira_issues") == [(key,)]
    assert source.rows("SELECT count(*) FROM jira_deleted_issues") == [(0,)]


# --- failures ------------------------------------------------------------------------------


def test_429_is_retried_after_the_time_jira_asks_for(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Rate limited")
    source.jira.fail_next(2, status=429, retry_after="3", path_prefix="/rest/api/3/issue/")
    source.sync()
    assert source.sleeps == [3.0, 3.0]
    assert source.rows(f"SELECT key FROM jira_issues WHERE key = '{key}'") == [(key,)]


def test_a_retry_after_of_no_time_is_not_a_licence_to_call_at_once(source: Source) -> None:
    """``Retry-After: 0`` (or a reset already past) was taken at its word: Jira was called
    again without a pause until the attempts ran out. It waits the client's own backoff
    for a 429 (5 s, doubling)."""
    key = source.jira.create_issue("PROJ", "Rate limited")
    source.jira.fail_next(2, status=429, retry_after="0", path_prefix="/rest/api/3/issue/")
    source.sync()
    assert source.sleeps == [5.0, 10.0]
    assert source.rows(f"SELECT key FROM jira_issues WHERE key = '{key}'") == [(key,)]


def test_a_long_retry_after_is_not_cut_short(source: Source) -> None:
    """Jira asks for a pause longer than the client waits in place: the sync fails at once
    saying so, and the error carries the pause, so nothing calls Jira again before it."""
    source.jira.create_issue("PROJ", "Rate limited")
    source.jira.fail_next(1, status=429, retry_after="120", path_prefix="/rest/api/3/search")
    with pytest.raises(TransientSyncError, match="asked to wait 120 s") as refused:
        source.sync()
    assert refused.value.retry_after_seconds == 120
    assert source.sleeps == []
    assert len(source.jira.calls("/rest/api/3/search")) == 1


@pytest.mark.parametrize(
    "header",
    [
        {"Retry-After": "9" * 400},  # a float of it is infinite
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"X-RateLimit-Reset": "9999-12-31T23:59Z"},
    ],
)
def test_a_pause_of_centuries_is_kept_as_a_day(source: Source, header: dict[str, str]) -> None:
    """An absurd pause was kept as asked: 400 digits failed the sync with an untyped
    OverflowError, a date centuries away went on to the webhook queue, whose worker no
    timer could hold that long (it stopped, and the source's webhooks with it)."""
    source.jira.create_issue("PROJ", "Rate limited")
    source.jira.fail_next(
        1, status=429, retry_after=None, path_prefix="/rest/api/3/search", headers=header
    )
    with pytest.raises(TransientSyncError, match="asked to wait") as refused:
        source.sync()
    assert refused.value.retry_after_seconds == 86_400 and source.sleeps == []


def test_a_429_with_only_x_ratelimit_reset_waits_until_then(source: Source) -> None:
    """Jira's rate limiting may send ``X-RateLimit-Reset`` (``yyyy-MM-ddTHH:mmZ``) and no
    ``Retry-After``; calling before then fails again (and lengthens the wait)."""
    source.jira.create_issue("PROJ", "Rate limited")
    reset = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    source.jira.fail_next(
        1, status=429, retry_after=None, path_prefix="/rest/api/3/search",
        headers={"X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
                 "RateLimit-Reason": "jira-burst-based"},
    )  # fmt: skip
    before = time.time()
    with pytest.raises(TransientSyncError, match="asked to wait") as refused:
        source.sync()
    after = time.time()
    # counted from when the 429 came, some time between `before` and `after` (a second
    # or more on a busy machine: a fixed 120 s floor failed whenever that crossed the
    # minute the header was written in)
    waited = refused.value.retry_after_seconds or 0
    assert math.ceil(reset.timestamp() - after) <= waited <= math.ceil(reset.timestamp() - before)
    assert waited > 60 and source.sleeps == []
    assert len(source.jira.calls("/rest/api/3/search")) == 1


def test_a_429_without_retry_after_backs_off_from_seconds(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Rate limited")
    source.jira.fail_next(2, status=429, retry_after=None, path_prefix="/rest/api/3/issue/")
    source.sync()
    assert source.sleeps == [5.0, 10.0]
    assert source.rows(f"SELECT key FROM jira_issues WHERE key = '{key}'") == [(key,)]


def test_exhausted_retries_fail_the_sync_and_keep_the_last_good_data(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Good")
    source.sync()
    shard = next(source.writer.paths.data.glob("jira_issues/*/*.parquet"))
    before = shard.read_bytes()
    source.jira.update_issue(key, summary="Never fetched")
    source.jira.fail_next(10, status=503, retry_after=None, path_prefix="/rest/api/3/issue/")
    with pytest.raises(TransientSyncError, match="could not be fetched"):
        source.sync()
    assert shard.read_bytes() == before
    assert source.rows("SELECT summary FROM jira_issues") == [("Good",)]


def test_a_redirect_loop_is_a_typed_failure_naming_the_url_option(
    source: Source, server: FakeJiraServer
) -> None:
    source.jira.fail_next(
        100, status=302, retry_after=None, path_prefix="/rest/api/3/myself",
        location=f"{server.url}/rest/api/3/myself",
    )  # fmt: skip
    with pytest.raises(TerminalSyncError, match="redirects GET /rest/api/3/myself in a loop") as e:
        source.sync()
    assert "'url' option" in (e.value.hint or "")


def test_an_answer_cut_off_is_worth_another_try_and_keeps_the_data(source: Source) -> None:
    """A 200 whose body does not parse (cut off, or a proxy's page) failed the sync as bad
    data, never retried; the data itself was never read, as with a network error."""
    key = source.jira.create_issue("PROJ", "Good")
    source.sync()
    source.jira.update_issue(key, summary="Not read yet")
    source.jira.fail_next(
        1, status=200, retry_after=None, path_prefix="/rest/api/3/search", raw_body='{"issues": [{'
    )
    with pytest.raises(TransientSyncError, match="is not JSON"):
        source.sync()
    assert source.rows("SELECT summary FROM jira_issues") == [("Good",)]
    source.sync()  # the next run reads it
    assert source.rows("SELECT summary FROM jira_issues") == [("Not read yet",)]


@pytest.mark.parametrize(
    "body", ['{"errorMessages": ["Search is unavailable, try again later."]}', "[]", '{"total": 0}']
)
def test_a_search_page_without_its_issues_is_not_an_empty_page(source: Source, body: str) -> None:
    """A 200 without ``issues`` (Jira's errorMessages, a proxy's JSON) was read as the last,
    empty page: the sync succeeded and moved its watermark past the change it never read."""
    key = source.jira.create_issue("PROJ", "Good")
    source.sync()
    source.jira.update_issue(key, summary="Changed")
    source.jira.fail_next(
        1, status=200, retry_after=None, path_prefix="/rest/api/3/search", raw_body=body
    )
    with pytest.raises(TransientSyncError, match="without its list of issues"):
        source.sync()
    source.sync()
    assert source.rows("SELECT summary FROM jira_issues") == [("Changed",)]


def test_a_comment_page_without_its_comments_keeps_the_issues_comments(source: Source) -> None:
    """A 200 without ``comments`` on a page past the embedded ones was read as an empty
    list, and the issue was published with none of its comments."""
    key = source.jira.create_issue("PROJ", "Talked about")
    for n in range(8):  # past the 5 embedded in the issue: the rest are paged
        source.jira.add_comment(key, f"note {n}")
    source.sync()
    count = f"SELECT count(*) FROM jira_comments WHERE issue_key = '{key}'"
    assert source.rows(count) == [(8,)]
    source.jira.update_issue(key, summary="Changed")
    source.jira.fail_next(
        1,
        status=200,
        retry_after=None,
        path_prefix=f"/rest/api/3/issue/{key}/comment",
        raw_body='{"errorMessages": ["Internal server error"]}',
    )
    with pytest.raises(TransientSyncError, match="without its list of comments: Internal"):
        source.sync()
    assert source.rows(count) == [(8,)]
    source.sync()
    assert source.rows(count) == [(8,)]
    assert source.rows("SELECT summary FROM jira_issues") == [("Changed",)]


def test_a_search_cursor_that_never_moves_stops_paging(source: Source) -> None:
    """Pages answered again and again with a fresh nextPageToken paged for ever, fetching
    the same issues at every page: the sync never ended."""
    for n in range(5):  # two pages of 3
        source.jira.create_issue("PROJ", f"Issue {n}")
    source.jira.search_stuck = True
    with pytest.raises(SourceDataError, match="3 pages in a row with no issue"):
        source.sync()
    assert len(source.jira.calls("/rest/api/3/search")) == 4  # the first page, then 3 again
    source.jira.search_stuck = False
    source.sync()
    assert source.rows("SELECT count(*) FROM jira_issues") == [(5,)]


def test_an_issue_nested_too_deep_to_read_is_skipped_and_said(source: Source) -> None:
    """A description of lists nested 300 deep (Jira serves any depth) raised Python's
    RecursionError while decoding: the sync failed, and failed again at every run, since
    the issue was read again each time."""
    fine = source.jira.create_issue("PROJ", "Readable")
    deep = source.jira.create_issue("PROJ", "Nested")
    nested = '{"type": "bulletList", "content": [{"type": "listItem", "content": ['
    text = (
        '{"type": "doc", "version": 1, "content": ['
        + nested * 300
        + ('{"type": "text", "text": "deep"}' + "]}]}" * 300 + "]}")
    )
    body = json.dumps(source.jira.issue_json(source.jira.issue_by(deep) or {}, "changelog"))
    body = body.replace('"fields": {', '"fields": {"description": ' + text + ", ", 1)
    source.jira.fail_next(
        1, status=200, retry_after=None, path_prefix=f"/rest/api/3/issue/{deep}", raw_body=body
    )
    published = source.sync()
    assert source.rows("SELECT key FROM jira_issues") == [(fine,)]
    assert any("nests arrays or objects too deeply" in note for note in published.notes)
    source.jira.update_issue(deep, summary="Flattened")  # read again once it changes
    source.sync()
    assert len(source.rows("SELECT key FROM jira_issues")) == 2


def test_a_refused_token_names_the_variable_never_the_value(
    source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_TEST_TOKEN", "wrong-token-value")
    with pytest.raises(TerminalSyncError) as refused:
        source.sync()
    assert "$JIRA_TEST_TOKEN" in refused.value.message
    assert "wrong-token-value" not in str(refused.value.to_dict())
    monkeypatch.delenv("JIRA_TEST_TOKEN")
    with pytest.raises(TerminalSyncError, match=r"\$JIRA_TEST_TOKEN is not set"):
        source.sync()


def test_a_failed_shard_rewrite_leaves_the_previous_shards(
    source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = source.jira.create_issue("PROJ", "Before", created=JAN)
    source.sync()
    files = {p: p.read_bytes() for p in source.writer.paths.data.rglob("*.parquet")}
    recorded = source.rows("SELECT path, content_hash FROM _files ORDER BY path")
    source.jira.update_issue(key, summary="After")
    import connectors.jira.shards as shards

    real = shards.pq.write_table
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the issues shard is staged; the changelog one fails
            raise OSError("disk full")
        real(*args, **kwargs)

    monkeypatch.setattr(shards.pq, "write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        source.sync()
    assert {p: p.read_bytes() for p in source.writer.paths.data.rglob("*.parquet")} == files
    assert source.rows("SELECT path, content_hash FROM _files ORDER BY path") == recorded
    assert not list(source.writer.paths.data.rglob("*.tmp"))


# --- upserts -------------------------------------------------------------------------------


def _issue(key: str, summary: str, updated: datetime) -> dict[str, Any]:
    return {
        "id": "500",
        "key": key,
        "fields": {
            "summary": summary,
            "created": "2026-01-05T10:00:00.000+0000",
            "updated": updated.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "project": {"key": "PROJ"},
        },
    }


def test_an_older_copy_never_overwrites_a_newer_one(source: Source) -> None:
    from connectors.jira.shards import Delete, ShardStore

    store = ShardStore.of(source.writer, source.connector.names)
    now, t0 = datetime.now(UTC), datetime(2026, 1, 6, tzinfo=UTC)
    newer = snapshot(
        _issue("PROJ-9", "newer", t0 + timedelta(hours=1)), comments=[], histories=[], synced_at=now
    )
    older = snapshot(_issue("PROJ-9", "older", t0), comments=[], histories=[], synced_at=now)
    assert store.apply([newer], []).upserted == 1
    assert store.apply([older], []).stale == 1
    assert source.rows("SELECT summary FROM jira_issues") == [("newer",)]
    assert store.apply([], [Delete("500", "PROJ-9")]).tombstoned == 1
    assert store.apply([newer], []).stale == 1  # a tombstone is not undone by a stale copy
    assert source.rows("SELECT count(*) FROM jira_issues") == [(0,)]
    assert source.rows("SELECT key, summary FROM jira_deleted_issues") == [("PROJ-9", "newer")]
    revived = snapshot(
        _issue("PROJ-9", "back", t0 + timedelta(hours=2)), comments=[], histories=[], synced_at=now
    )
    assert store.apply([revived], []).upserted == 1  # a newer state (e.g. restored) is live
    assert source.rows("SELECT summary FROM jira_issues") == [("back",)]
    assert source.rows("SELECT count(*) FROM jira_deleted_issues") == [(0,)]


def test_a_moved_issue_keeps_one_row_under_its_new_key(
    server: FakeJiraServer, tmp_path: Path
) -> None:
    source = Source(server, tmp_path, census_hours=1000)
    key = source.jira.create_issue("PROJ", "Moving")
    source.sync()
    new_key = source.jira.move_issue(key, "NEWP")
    source.connector.apply_webhook([IssueWork("upsert", key, None)], source.writer)
    assert source.rows("SELECT key, project_key FROM jira_issues") == [(new_key, "NEWP")]


def test_apply_webhook_fetches_now_and_tombstones_deletions(source: Source) -> None:
    a = source.jira.create_issue("PROJ", "A")
    b = source.jira.create_issue("PROJ", "B")
    issue_b = source.jira.issue_by(b)
    assert issue_b is not None
    outcome = source.connector.apply_webhook(
        [IssueWork("upsert", a, None), IssueWork("upsert", b, None), IssueWork("upsert", a, None)],
        source.writer,
    )
    assert set(outcome.tables) == {
        "jira_issues",
        "jira_comments",
        "jira_changelog",
        "jira_issuelinks",
        "jira_deleted_issues",
    }
    assert len(source.jira.calls(f"/rest/api/3/issue/{a}")) == 1  # equal items fetched once
    source.jira.delete_issue(b)
    payload = json.dumps(issue_b, sort_keys=True)
    source.connector.apply_webhook(
        [IssueWork("upsert", b, None), IssueWork("delete", b, issue_b["id"], payload)],
        source.writer,
    )
    assert source.rows("SELECT key FROM jira_issues") == [(a,)]
    assert source.rows("SELECT key, detected_by FROM jira_deleted_issues") == [(b, "webhook")]
    # a deletion of an issue never stored is kept as a tombstone, from the event's copy
    c = source.jira.create_issue("PROJ", "C")
    issue_c = source.jira.delete_issue(c)
    source.connector.apply_webhook(
        [IssueWork("delete", c, issue_c["id"], json.dumps(issue_c))], source.writer
    )
    assert source.rows(f"SELECT summary FROM jira_deleted_issues WHERE key = '{c}'") == [("C",)]


def test_a_deleted_comment_leaves_with_the_next_event(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Chatty")
    first = source.jira.add_comment(key, "keep me")
    second = source.jira.add_comment(key, "delete me")
    work = IssueWork("upsert", key, None)
    source.connector.apply_webhook([work], source.writer)
    source.jira.delete_comment(key, second)
    source.connector.apply_webhook([work], source.writer)  # comment_deleted: fetched again
    assert source.rows("SELECT comment_id, body FROM jira_comments") == [(first, "keep me")]


def test_transient_fetch_failures_come_back_as_retries(source: Source) -> None:
    key = source.jira.create_issue("PROJ", "Flaky")
    source.jira.fail_next(10, status=502, retry_after=None, path_prefix=f"/rest/api/3/issue/{key}")
    work = IssueWork("upsert", key, None)
    outcome = source.connector.apply_webhook([work], source.writer)
    assert outcome.retry == (work,) and outcome.tables == ()


def test_comments_of_a_jira_that_ignores_start_at_are_never_cut_short(source: Source) -> None:
    """Behind a proxy that drops the query string, every comment page is the first: the
    issue was published with the first 50 of its 120 comments, as if that were all."""
    key = source.jira.create_issue("PROJ", "Chatty")
    for n in range(120):
        source.jira.add_comment(key, f"comment {n}")
    source.jira.start_at_ignored = True
    work = IssueWork("upsert", key, None)
    outcome = source.connector.apply_webhook([work], source.writer)
    assert outcome.retry == (work,) and outcome.tables == ()
    with pytest.raises(TransientSyncError, match="with a page it had sent already: 50 of 120"):
        source.connector.client.issue(key)
    source.jira.start_at_ignored = False
    source.connector.apply_webhook([work], source.writer)
    assert source.rows("SELECT count(*) FROM jira_comments") == [(120,)]


def test_an_issue_key_is_checked_before_any_request(source: Source) -> None:
    for bad in ("../../etc/passwd", "proj-1", "PROJ-1/comment", "A" * 40 + "-1"):
        with pytest.raises(SourceDataError):
            source.connector.client.issue(bad)
    assert not source.jira.calls("/rest/api/3/issue")


# --- webhook receipts ----------------------------------------------------------------------


def test_receipts_verify_the_signature_and_name_the_work(source: Source) -> None:
    jira = source.jira
    key = jira.create_issue("PROJ", "Hooked")
    body = jira.webhook_body("jira:issue_updated", key)
    receipt = source.receive(body)
    assert receipt.delivery_id == "d-1"
    assert receipt.work == (IssueWork("upsert", key, jira.issue_by(key)["id"]),)  # type: ignore[index]
    worklog = source.receive(jira.webhook_body("worklog_updated", key))
    assert worklog.work == (IssueWork("upsert", None, jira.issue_by(key)["id"]),)  # type: ignore[index]
    link = json.dumps(
        {
            "webhookEvent": "issuelink_created",
            "issueLink": {"id": 1, "sourceIssueId": 11, "destinationIssueId": 12},
        }
    ).encode()
    assert [w.issue_id for w in source.receive(link).work] == ["11", "12"]  # type: ignore[attr-defined]
    other = jira.webhook_body("jira:issue_created", jira.create_issue("OTHER", "Elsewhere"))
    assert source.receive(other).work == ()
    with pytest.raises(WebhookSignatureInvalid):
        source.receive(body, **{"X-Hub-Signature": sign(body, "not-the-secret")})
    with pytest.raises(WebhookSignatureInvalid):
        source.receive(body, **{"X-Hub-Signature": ""})
    with pytest.raises(WebhookPayloadInvalid):
        source.receive(b"[1, 2]")
    with pytest.raises(WebhookPayloadInvalid):
        source.receive(b'{"webhookEvent": "jira:issue_updated", "issue": {"key": "bad key"}}')


def test_without_the_secret_variable_receipts_are_refused(
    source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIRA_TEST_SECRET")
    with pytest.raises(WebhookNotConfigured, match="no secret is configured") as refused:
        source.receive(b"{}")
    assert "JIRA_TEST_SECRET" not in str(refused.value)  # the log names it, not the answer
