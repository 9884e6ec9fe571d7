"""The admin app's usage and audit pages, driven in plain Python against real services, and
the REST routes that call the same functions (``/api/admin/usage``, ``/api/admin/audit``)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from agnes_admin.context import PageContext
from agnes_admin.pages.audit import AuditPage
from agnes_admin.pages.usage import UsagePage
from agnes_mcp.api.app import create_app
from agnes_mcp.api.routes import audit as audit_routes
from agnes_mcp.audit_query import audit_filter, audit_page
from agnes_mcp.auth.principal import Principal
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.rails.refusals import QueryRefused
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditEntry
from agnes_mcp.store.users import User
from tests.conftest import add_user, register, token_for
from tests.test_api_http import assert_error
from tests.threaded_server import ThreadedServer


@dataclass
class World:
    services: Services
    ctx: PageContext
    admin: User
    analyst: User
    analyst_principal: Principal


@pytest.fixture
def world(synced: Services) -> World:
    register(synced, id="orders", source_type="sample", source_options={"rows": 50})
    assert synced.sync.sync("orders").status == "ok"
    readers = synced.groups.add("Readers")
    synced.grants.add(readers.id, ResourceType.TABLE, "orders")
    admin = add_user(synced, groups=(ADMIN_GROUP_ID,))
    analyst = add_user(synced, groups=(readers.id,))
    principal = synced.tokens.authenticate(token_for(synced, analyst), record_use=False)
    session, _ = synced.web_sessions.sign_in(admin.id, "token")
    return World(synced, PageContext(synced, session.id), admin, analyst, principal)


def remote_query_row(
    services: Services, principal: Principal, scanned: int, *, seconds_ago: float = 0
) -> None:
    """What a remote query writes to the audit log (through the write-behind)."""
    services.audit.record(
        principal,
        "query",
        resource="orders",
        params={"sql": f"SELECT {scanned}", "bytes_scanned": scanned, "engine": "warehouse"},
        started=time.perf_counter() - seconds_ago,
    )


# --- usage ---------------------------------------------------------------------------------


def test_usage_numbers_match_the_queries_run(world: World) -> None:
    services, analyst = world.services, world.analyst_principal
    outcomes = [services.query.run(analyst, "SELECT count(*) FROM orders") for _ in range(3)]
    with pytest.raises(QueryRefused) as refused:
        services.query.run(analyst, "SELECT * FROM no_such_table")
    remote_query_row(services, analyst, 7_000)
    remote_query_row(services, analyst, 90_000)
    remote_query_row(services, analyst, 10, seconds_ago=30)  # the slowest by far
    services.audit.record(  # a dry-run estimate is not a query
        analyst,
        "query.estimate",
        params={"sql": "SELECT 2", "bytes_estimated": 10**9},
        started=time.perf_counter() - 60,
    )
    yesterday = datetime.now(UTC) - timedelta(days=1)
    services.write_behind.audit(
        AuditEntry(
            at=yesterday,
            user_id=analyst.user_id,
            action="query",
            result="ok",
            params={"sql": "SELECT 1", "bytes_scanned": 500},
        )
    )

    page = UsagePage(world.ctx)
    report = page.report
    assert report is not None
    by_day = {(d.day, d.email): d for d in report.bytes_per_user_day}
    local = sum(o.bytes_scanned for o in outcomes)
    today = by_day[(datetime.now(UTC).date(), world.analyst.email)]
    assert today.bytes_scanned == local + 97_010
    assert today.queries == 3 + 1 + 3  # local, refused, remote
    assert by_day[(yesterday.date(), world.analyst.email)].bytes_scanned == 500
    assert [q.bytes_scanned for q in report.top_by_bytes[:3]] == [90_000, 7_000, 500]
    assert report.top_by_duration[0].sql == "SELECT 10"
    assert report.top_by_duration[0].duration_ms is not None
    assert report.top_by_duration[0].duration_ms >= 30_000
    refusals = {(r.code, r.action): r.count for r in report.refusals}
    assert refusals == {(refused.value.code, "query"): 1}
    budgets = {b.email: b for b in report.budgets}
    cap = services.query.budget.caps().per_user_daily_bytes
    assert budgets[world.analyst.email].spent_today == local + 97_010
    assert budgets[world.analyst.email].left_today == cap - local - 97_010
    assert budgets[world.analyst.email].left_today == services.query.budget.remaining(analyst)
    assert budgets[world.admin.email].spent_today == 0
    # a little spent of 50 GiB: "left" does not read as the whole cap, as "50.0 GiB" did
    shown_budgets = {row["email"]: row for row in page.budgets.value.to_dict("records")}
    left = cap - local - 97_010
    assert shown_budgets[world.analyst.email]["left_today"] == f"50.0 GiB ({left:,} bytes)"
    assert shown_budgets[world.admin.email]["left_today"] == "50.0 GiB"
    assert page.plot.object is not None and not page.no_data.visible
    shown = page.top_by_bytes.value.to_dict("records")
    assert shown[0]["bytes_scanned"] == 90_000 and shown[0]["email"] == world.analyst.email
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown[0]["at"])  # in UTC, saying so
    assert refused.value.code in set(page.refusals.value["code"])


def test_a_long_sql_is_cut_in_the_tables_and_says_where_the_rest_is() -> None:
    from agnes_admin.pages.usage import SQL_SHOWN, _tops
    from agnes_mcp.usage_report import TopQuery

    sql = "SELECT " + ", ".join(f"c{i}" for i in range(200)) + " FROM t"
    query = TopQuery(
        id=7, at=datetime.now(UTC), user_id="u", email="e", action="query", result="ok",
        bytes_scanned=1, duration_ms=1.0, sql=sql,
    )  # fmt: skip
    (shown,) = _tops([query])["sql"]
    assert shown.startswith(sql[:SQL_SHOWN] + "…")
    assert f"cut at {SQL_SHOWN} of {len(sql)} characters" in shown and "Audit log, row 7" in shown
    short = query.model_copy(update={"sql": "SELECT 1"})
    assert list(_tops([short])["sql"]) == ["SELECT 1"]  # whole: nothing added


def test_usage_of_an_empty_log_and_a_narrower_window(world: World) -> None:
    page = UsagePage(world.ctx)
    assert page.report is not None and page.report.bytes_per_user_day == []
    assert page.no_data.visible and page.plot.object is None
    world.services.write_behind.audit(
        AuditEntry(
            at=datetime.now(UTC) - timedelta(days=3),
            user_id=world.analyst.id,
            action="query",
            result="ok",
            params={"sql": "SELECT 1", "bytes_scanned": 123},
        )
    )
    page.refresh_button.clicks += 1
    assert page.report is not None and len(page.report.bytes_per_user_day) == 1
    page.days.value = 2  # typed, then Enter: that window is shown (no Refresh click)
    assert page.report.days == 2 and page.report.bytes_per_user_day == []
    # a window out of range is refused in words (the box used to snap back silently)
    page.days.value = 1000
    assert page.message.visible and "1-366 days, not 1000" in page.message.object
    assert page.report.days == 2
    page.days.value = None
    page.refresh()
    assert page.message.visible and "number of days" in page.message.object
    assert (page.days.start, page.days.end) == (None, None)  # the browser never snaps it


# --- audit log -----------------------------------------------------------------------------


def write_rows(world: World, count: int) -> datetime:
    """``count`` rows, one second apart, alternating users, actions and outcomes; returns
    the time of the first."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    users = [world.admin.id, world.analyst.id]
    for i in range(count):
        world.services.write_behind.audit(
            AuditEntry(
                at=start + timedelta(seconds=i),
                user_id=users[i % 2],
                action=("test.alpha", "test.beta", "test.gamma")[i % 3],
                result="ok" if i % 5 else "budget_exhausted",
                params={"n": i, "nested": {"list": [i, i + 1]}},
                resource=f"r{i}",
            )
        )
    world.services.write_behind.flush()
    return start


def test_audit_filters_paging_and_details(world: World) -> None:
    start = write_rows(world, 1_000)
    page = AuditPage(world.ctx)
    assert page.position.object == "Page 1 of 20 (1,000 rows)"  # as the grids write counts
    assert "test.beta" in page.action.options and "budget_exhausted" in page.outcome.options
    page.action.value = "test.alpha"
    page.apply_button.clicks += 1
    assert page.rows is not None and page.rows.total == 334 and page.rows.pages == 7
    expected = [n for n in range(999, -1, -1) if n % 3 == 0]
    assert [e.params["n"] for e in page.rows.entries] == expected[:50]
    assert page.previous.disabled and not page.next.disabled
    page.next.clicks += 1
    assert page.page == 2 and [e.params["n"] for e in page.rows.entries] == expected[50:100]
    assert page.position.object == "Page 2 of 7 (334 rows)"
    page.go(7)
    assert len(page.rows.entries) == 334 - 300 and page.next.disabled

    page.user.value = world.analyst.email
    page.outcome.value = "budget_exhausted"
    page.since.value = (start + timedelta(seconds=100)).replace(tzinfo=None)
    page.until.value = (start + timedelta(seconds=400)).replace(tzinfo=None)
    page.apply()
    want = [n for n in range(399, 99, -1) if n % 3 == 0 and n % 2 == 1 and n % 5 == 0]
    assert [e.params["n"] for e in page.rows.entries] == want
    assert all(e.email == world.analyst.email for e in page.rows.entries)
    page.outcome.value = "failed"
    page.apply()
    assert [e.params["n"] for e in page.rows.entries] == want  # the only failure here

    page.table.selection = [1]
    assert page.details.object["params"] == {
        "n": want[1],
        "nested": {"list": [want[1], want[1] + 1]},
    }
    assert page.details.object["resource"] == f"r{want[1]}"

    # an action first recorded after the page loaded can be chosen after Apply, no reload
    world.services.write_behind.audit(
        AuditEntry(at=start, user_id=world.admin.id, action="test.new", result="ok")
    )
    world.services.write_behind.flush()
    assert "test.new" not in page.action.options
    page.apply_button.clicks += 1
    assert "test.new" in page.action.options and page.outcome.value == "failed"  # kept


def test_audit_user_filter_takes_a_part_of_a_name_or_e_mail(world: World) -> None:
    """A careful admin types a part of someone's e-mail or name (in any case): the filter
    took only a whole id or e-mail, and "Nothing matched" read as "no such rows"."""
    ann = world.services.users.add("ann@example.com", "Ann Lee")
    joann = world.services.users.add("joann@example.com", "Jo Ann")
    for user in (ann, joann, world.analyst):
        world.services.write_behind.audit(
            AuditEntry(at=datetime.now(UTC), user_id=user.id, action="test.who", result="ok")
        )
    world.services.write_behind.flush()
    page = AuditPage(world.ctx)
    page.action.value = "test.who"

    def emails(typed: str) -> set[str | None]:
        page.user.value = typed
        page.apply()
        assert not page.message.visible, page.message.object
        assert page.rows is not None
        return {e.email for e in page.rows.entries}

    assert emails("ANN") == {"ann@example.com", "joann@example.com"}
    assert emails("jo ann") == {"joann@example.com"}  # a part of the name
    assert emails("ann@example.com") == {"ann@example.com"}  # a whole e-mail: that user only
    assert emails(world.analyst.email.split("@")[0][2:]) == {world.analyst.email}
    page.user.value = "zzz-nobody"
    page.apply()
    assert page.message.visible and "zzz-nobody" in page.message.object


def test_audit_bad_filters_are_shown_and_change_nothing(world: World) -> None:
    write_rows(world, 10)
    page = AuditPage(world.ctx)
    assert page.rows is not None
    before = page.rows.total
    page.user.value = "nobody@example.com"
    page.apply()
    assert page.message.visible and "nobody@example.com" in page.message.object
    assert page.rows.total == before
    page.user.value = ""
    page.since.value = datetime(2026, 3, 2)
    page.until.value = datetime(2026, 3, 1)
    page.apply()
    assert page.message.visible and "after its start" in page.message.object
    world.services.web_sessions.sign_out(world.ctx.session_id)
    page.go(1)
    assert "signed out" in page.message.object


def test_paging_counts_and_pages_100k_rows_in_sql(world: World) -> None:
    with world.services.store.writer() as cur:
        cur.execute(
            "INSERT INTO audit_log (occurred_at, user_id, action, params, result) "
            "SELECT TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(range), "
            "CASE WHEN range % 2 = 0 THEN ? ELSE ? END, "
            "CASE WHEN range % 3 = 0 THEN 'query' ELSE 'pull' END, "
            "json_object('n', range), CASE WHEN range % 7 = 0 THEN 'refused' ELSE 'ok' END "
            "FROM range(100000)",
            [world.admin.id, world.analyst.id],
        )
    admin = world.ctx.actor()
    where = audit_filter(world.services, user=world.analyst.email, action="query", outcome="ok")
    rows = audit_page(world.services, admin, where, page=200, page_size=50)
    assert rows.total == sum(1 for n in range(100_000) if n % 2 and n % 3 == 0 and n % 7)
    assert len(rows.entries) == 50
    # Newest first: page 200 of 50 starts at the 9,951st matching row.
    matching = sorted((n for n in range(100_000) if n % 2 and n % 3 == 0 and n % 7), reverse=True)
    assert rows.entries[0].params == {"n": matching[199 * 50]}


# --- the REST routes -----------------------------------------------------------------------


@pytest.fixture
def api(world: World) -> Iterator[str]:
    app = create_app(world.services)
    if not any(getattr(r, "path", "") == "/api/admin/audit" for r in app.routes):
        app.include_router(audit_routes.router)  # until the app registers the module itself
    with ThreadedServer(app) as server:
        yield server.url


def test_rest_audit_and_usage(world: World, api: str) -> None:
    write_rows(world, 120)
    admin_token = token_for(world.services, world.admin, admin=True)
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=api, headers=headers) as admin:
        body = admin.get(
            "/api/admin/audit", params={"action": "test.beta", "page": 2, "page_size": 10}
        ).json()
        assert body["total"] == 40 and body["pages"] == 4 and body["page"] == 2
        assert [e["params"]["n"] for e in body["entries"]] == [
            n for n in range(119, -1, -1) if n % 3 == 1
        ][10:20]
        assert_error(admin.get("/api/admin/audit", params={"page_size": 0}), 422, "invalid_request")
        assert_error(
            admin.get("/api/admin/audit", params={"user": "x@example.com"}), 404, "user_not_found"
        )
        usage = admin.get("/api/admin/usage", params={"days": 3, "top": 5}).json()
        assert usage["days"] == 3 and {b["email"] for b in usage["budgets"]} >= {
            world.admin.email,
            world.analyst.email,
        }
    analyst_token = token_for(world.services, world.analyst)
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {analyst_token}"}) as c:
        assert_error(c.get("/api/admin/audit"), 403, "admin_required")
        assert_error(c.get("/api/admin/usage"), 403, "admin_required")


def test_audit_pages_stay_one_list_while_new_rows_arrive(world: World) -> None:
    """Pages were read by offset: each row recorded after page 1 was shown pushed a row
    already seen onto page 2 (every query writes one, so a busy server showed most of page
    1 again). The rows paged through are those up to the newest row of the first page
    read; Apply filters reads the newer ones."""
    start = write_rows(world, 60)
    world.services.write_behind.flush()
    page = AuditPage(world.ctx)
    assert page.rows is not None and page.rows.total == 60
    first = [e.params["n"] for e in page.rows.entries]
    for i in range(10):  # recorded while the admin reads page 1
        world.services.write_behind.audit(
            AuditEntry(
                at=start + timedelta(hours=1, seconds=i), user_id=None, action="x", result="ok"
            )
        )
    world.services.write_behind.flush()
    page.next.clicks += 1
    second = [e.params["n"] for e in page.rows.entries]
    assert first == list(range(59, 9, -1)) and second == list(range(9, -1, -1))
    assert page.position.object == "Page 2 of 2 (60 rows)"
    page.apply_button.clicks += 1
    assert page.rows.total == 70 and page.rows.entries[0].action == "x"
