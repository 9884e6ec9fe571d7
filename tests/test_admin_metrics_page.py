"""The admin app's metrics page, driven in plain Python against real services: the list
with validation status, the definition with its SQL for DuckDB and BigQuery, importing
YAML (all or nothing, every problem with file and key), deleting after a confirmation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agnes_admin.context import PageContext
from agnes_admin.pages.metrics import MetricsPage
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.services import Services
from tests.conftest import add_user, register, running_server
from tests.test_api_http import assert_error

GOOD = """\
metrics:
  - name: monthly_amount
    display_name: Amount per month
    category: sales
    description: the sum of amounts
    type: sum
    table: orders
    expression: sum(amount)
    time_column: day
    grain: month
  - name: order_count
    display_name: Orders
    category: sales
    description: how many orders
    type: count
    table: orders
    expression: count(*)
"""

BAD_KEY = """\
name: broken
display_name: Broken
category: sales
description: an unknown key and a bad type
type: median
table: orders
expression: count(*)
"""

UNKNOWN_TABLE = """\
name: ghost_count
display_name: Ghosts
category: sales
description: reads a table nobody registered
type: count
table: ghosts
expression: count(*)
"""


@pytest.fixture
def ctx(synced: Services) -> PageContext:
    register(synced, id="orders", source_type="sample", source_options={"rows": 5})
    admin = add_user(synced, groups=(ADMIN_GROUP_ID,))
    session, _ = synced.web_sessions.sign_in(admin.id, "token")
    return PageContext(synced, session.id)


def upload(page: MetricsPage, files: dict[str, str]) -> None:
    page.upload.filename = list(files)
    page.upload.value = [text.encode() for text in files.values()]


def audit_rows(services: Services, action: str) -> list[dict[str, object]]:
    services.write_behind.flush()
    return [r.model_dump() for r in services.audit_log.recent(limit=50) if r.action == action]


def test_import_with_one_bad_file_applies_nothing_and_lists_every_problem(
    ctx: PageContext,
) -> None:
    page = MetricsPage(ctx)
    assert page.table.value.empty
    upload(page, {"good.yml": GOOD, "bad.yml": BAD_KEY, "ghost.yml": UNKNOWN_TABLE})
    page.import_button.clicks += 1  # as the browser does
    assert ctx.services.metrics.all() == []
    assert page.problems.visible and page.message.alert_type == "danger"
    problems = page.problems.value.to_dict("records")
    assert {(p["file"], p["key"].split(" ")[0]) for p in problems} == {
        ("bad.yml", "type"),
    }
    # the valid files alone still fail on the unregistered table, named with its file
    upload(page, {"good.yml": GOOD, "ghost.yml": UNKNOWN_TABLE})
    page.import_files(dry_run=False)
    problems = page.problems.value.to_dict("records")
    assert [(p["file"], p["key"]) for p in problems] == [("ghost.yml", "sales/ghost_count.tables")]
    assert "ghosts" in problems[0]["message"]
    assert ctx.services.metrics.all() == [] and audit_rows(ctx.services, "metrics.import") == []


def test_every_problem_of_every_file_is_listed(ctx: PageContext) -> None:
    page = MetricsPage(ctx)
    second = BAD_KEY.replace("name: broken", "name: Broken Too").replace("median", "sum")
    third = UNKNOWN_TABLE + "colour: blue\n"
    upload(page, {"a.yml": BAD_KEY, "b.yml": second, "c.yml": third})
    page.import_files(dry_run=True)
    found = {(p["file"], p["key"], p["message"]) for p in page.problems.value.to_dict("records")}
    assert {(file, key.split(" ")[0]) for file, key, _ in found} == {
        ("a.yml", "type"),
        ("b.yml", "name"),
        ("c.yml", ""),  # an unknown key is named in the message, on the metric
    }
    assert any(f == "c.yml" and "colour" in m and "ghost_count" in k for f, k, m in found)


def test_a_file_that_is_not_utf8_is_listed_not_read_as_replacement_characters(
    ctx: PageContext,
) -> None:
    page = MetricsPage(ctx)
    page.upload.filename = ["windows.yml", "sales.yml"]
    page.upload.value = [GOOD.encode("utf-16"), GOOD.encode()]
    page.import_files(dry_run=False)
    problems = page.problems.value.to_dict("records")
    assert [(p["file"], p["message"]) for p in problems] == [
        ("windows.yml", "is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8")
    ]
    assert page.problems.visible and ctx.services.metrics.all() == []


def test_good_import_applies_shows_status_and_both_dialects(ctx: PageContext) -> None:
    page = MetricsPage(ctx)
    upload(page, {"sales.yml": GOOD})
    page.validate_button.clicks += 1
    assert "would import" in page.message.object and ctx.services.metrics.all() == []
    page.import_button.clicks += 1
    assert not page.problems.visible, page.message.object
    listed = page.table.value.to_dict("records")
    assert [(r["id"], r["status"]) for r in listed] == [
        ("sales/monthly_amount", "valid"),
        ("sales/order_count", "valid"),
    ]
    (row,) = audit_rows(ctx.services, "metrics.import")
    assert row["user_id"] == ctx.actor().user_id
    assert row["params"]["ids"] == ["sales/monthly_amount", "sales/order_count"]

    page.table.selection = [0]  # as a click on the first row does
    assert page.selected == "sales/monthly_amount"
    assert "expression: sum(amount)" in page.definition.object
    duck, big = page.duckdb_sql.object, page.bigquery_sql.object
    assert "DATE_TRUNC('MONTH', day)" in duck and "```sql" in duck
    assert "DATE_TRUNC(day, MONTH)" in big
    assert duck != big


def test_status_flags_a_metric_whose_table_went_away(ctx: PageContext) -> None:
    MetricsPage(ctx)  # builds
    admin = ctx.actor()
    from agnes_mcp.metrics.admin import import_metrics

    import_metrics(ctx.services, admin, {"sales.yml": GOOD})
    ctx.services.registry.delete("orders")
    page = MetricsPage(ctx)
    statuses = {r["id"]: r for r in page.table.value.to_dict("records")}
    assert statuses["sales/order_count"]["status"] == "invalid"
    assert "'orders'" in statuses["sales/order_count"]["problems"]


def test_delete_asks_first_then_deletes_and_audits(ctx: PageContext) -> None:
    page = MetricsPage(ctx)
    upload(page, {"sales.yml": GOOD})
    page.import_files(dry_run=False)
    page.show("sales/order_count")
    page.delete_button.clicks += 1
    assert page.confirm_row.visible and "sales/order_count" in page.confirm_row[0].object
    page.cancel_delete.clicks += 1
    assert not page.confirm_row.visible
    assert ctx.services.metrics.get("sales/order_count") is not None
    page.delete_button.clicks += 1
    page.confirm_delete.clicks += 1
    assert ctx.services.metrics.get("sales/order_count") is None
    assert [r["id"] for r in page.table.value.to_dict("records")] == ["sales/monthly_amount"]
    (row,) = audit_rows(ctx.services, "metrics.delete")
    assert row["resource"] == "sales/order_count" and row["user_id"] == ctx.actor().user_id
    # deleted elsewhere (another admin, the CLI) while shown here: said, and off the list
    page.show("sales/monthly_amount")
    ctx.services.metrics.delete("sales/monthly_amount")
    page.delete_button.clicks += 1
    page.confirm_delete.clicks += 1
    assert "deleted elsewhere" in page.message.object and page.delete_button.disabled
    assert page.table.value.empty


def test_an_import_that_removes_metrics_asks_first(ctx: PageContext) -> None:
    page = MetricsPage(ctx)
    upload(page, {"sales.yml": GOOD})
    page.import_files(dry_run=False)
    before = {m.id for m in ctx.services.metrics.all()}
    assert len(before) == 2
    one = "metrics:\n  - name: order_count" + GOOD.split("  - name: order_count")[1]
    upload(page, {"one.yml": one})
    page.replace.value = True
    page.import_button.clicks += 1
    assert page.import_row.visible and "remove 1 others" in page.import_question.object
    assert {m.id for m in ctx.services.metrics.all()} == before  # nothing until confirmed
    page.cancel_import.clicks += 1
    assert not page.import_row.visible and {m.id for m in ctx.services.metrics.all()} == before
    page.import_button.clicks += 1
    page.confirm_import.clicks += 1
    assert {m.id for m in ctx.services.metrics.all()} == {"sales/order_count"}  # one removed
    assert "removed 1 other metrics" in page.message.object


def test_a_signed_out_session_changes_nothing(ctx: PageContext) -> None:
    page = MetricsPage(ctx)
    ctx.services.web_sessions.sign_out(ctx.session_id)
    upload(page, {"sales.yml": GOOD})
    page.import_files(dry_run=False)
    assert ctx.services.metrics.all() == []
    assert page.message.alert_type == "danger" and "signed out" in page.message.object


def test_rest_import_and_sql_use_the_same_service(tmp_path: Path) -> None:
    with running_server(
        tmp_path / "data", sources={"sample": {"connector": "sample"}}, scheduler_enabled=False
    ) as live:
        register(live.services, id="orders", source_type="sample", source_options={"rows": 5})
        with live.client(live.admin_token) as admin:
            ghost = admin.post(
                "/api/admin/metrics/import",
                json={"files": {"g.yml": UNKNOWN_TABLE}, "dry_run": True},
            )
            error = assert_error(ghost, 422, "metrics_invalid")  # a dry run checks tables too
            assert error["details"]["problems"][0]["file"] == "g.yml"
            done = admin.post("/api/admin/metrics/import", json={"files": {"s.yml": GOOD}})
            assert done.json()["imported"] == ["sales/monthly_amount", "sales/order_count"]
            shown = admin.get("/api/admin/metrics/sales/monthly_amount/sql").json()
            assert shown["definition"]["expression"] == "sum(amount)"
            sql = shown["compiled"]
            assert [c["dialect"] for c in sql] == ["duckdb", "bigquery"]
            assert all(c["sql"] and c["error"] is None for c in sql)
            assert "DATE_TRUNC(day, MONTH)" in sql[1]["sql"]
            missing = admin.get("/api/admin/metrics/sales/nothing/sql")
            assert_error(missing, 404, "metric_not_found")
        with httpx.Client(base_url=live.base_url) as anonymous:
            assert anonymous.get("/api/admin/metrics/sales/order_count/sql").status_code == 401


def test_a_question_is_about_the_metric_and_files_it_named(ctx: PageContext) -> None:
    """Delete was asked about one metric, another was selected, and Confirm deleted the
    one selected by then; an import asked about with one file applied files uploaded
    after the question. A question now stands for what it named, and choosing otherwise
    withdraws it."""
    page = MetricsPage(ctx)
    upload(page, {"sales.yml": GOOD})
    page.import_files(dry_run=False)
    page.show("sales/order_count")
    page.delete_button.clicks += 1
    assert "sales/order_count" in page.confirm_text.object
    page.show("sales/monthly_amount")  # another row chosen: the question is withdrawn
    assert not page.confirm_row.visible
    page.confirm_delete.clicks += 1  # a click that reached the server anyway
    assert {m.id for m in ctx.services.metrics.all()} == {
        "sales/order_count",
        "sales/monthly_amount",
    }

    one = "metrics:\n  - name: order_count" + GOOD.split("  - name: order_count")[1]
    upload(page, {"one.yml": one})
    page.replace.value = True
    page.import_button.clicks += 1
    assert page.import_row.visible and "remove 1 others" in page.import_question.object
    upload(page, {"none.yml": "metrics: []\n"})  # other files: the question is withdrawn
    assert not page.import_row.visible
    page.confirm_import.clicks += 1
    assert len(ctx.services.metrics.all()) == 2  # nothing removed on a withdrawn question

    upload(page, {"one.yml": one})
    page.import_button.clicks += 1
    page.confirm_import.clicks += 1
    assert {m.id for m in ctx.services.metrics.all()} == {"sales/order_count"}


def test_the_metric_shown_follows_an_import(ctx: PageContext) -> None:
    """An import that changed the metric shown left its old definition and SQL on the
    page; one that removed it left it shown, with Delete offered ("deleted elsewhere" when
    clicked). The metric shown is now shown again as stored, or no longer shown."""
    page = MetricsPage(ctx)
    upload(page, {"sales.yml": GOOD})
    page.import_files(dry_run=False)
    page.show("sales/monthly_amount")
    assert "SUM(amount)" in page.duckdb_sql.object
    upload(page, {"sales.yml": GOOD.replace("sum(amount)", "max(amount)")})
    page.import_files(dry_run=False)
    assert "MAX(amount)" in page.duckdb_sql.object and "sum(amount)" not in page.definition.object
    assert page.selected == "sales/monthly_amount"
    assert list(page.table.selection) == [0]  # still marked in the list

    one = "metrics:\n  - name: order_count" + GOOD.split("  - name: order_count")[1]
    upload(page, {"one.yml": one})
    page.replace.value = True
    page.import_button.clicks += 1
    page.confirm_import.clicks += 1
    assert {m.id for m in ctx.services.metrics.all()} == {"sales/order_count"}
    assert page.selected is None and page.delete_button.disabled
    assert "monthly_amount" not in page.definition.object and page.duckdb_sql.object == ""
