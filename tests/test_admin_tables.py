"""The admin app's Tables page, driven without a browser: real services, real DuckDB,
widgets set and buttons clicked in plain Python."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bokeh.document import Document
from panel.io.state import set_curdoc
from panel.models.tabulator import DataTabulator

from agnes_admin.context import PageContext
from agnes_admin.pages.tables import TablesPage
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditRow
from agnes_mcp.store.users import User
from tests.conftest import add_user, register, running_server


@pytest.fixture
def admin_user(synced: Services) -> User:
    return add_user(synced, (ADMIN_GROUP_ID,))


@pytest.fixture
def context(synced: Services, admin_user: User, source_root: Path) -> PageContext:
    (source_root / "people.csv").write_text("id,name,joined\n1,Ada,2026-01-02\n2,Bo,2026-02-03\n")
    session, _ = synced.web_sessions.sign_in(admin_user.id, "token")
    return PageContext(synced, session.id)


@pytest.fixture
def page(context: PageContext) -> TablesPage:
    return TablesPage(context)


def click(button: object) -> None:
    button.clicks += 1  # type: ignore[attr-defined]


def audit_rows(services: Services, action: str) -> list[AuditRow]:
    services.write_behind.flush()
    return [r for r in services.audit_log.recent(limit=1000) if r.action == action]


def listed(page: TablesPage) -> list[str]:
    return list(page.registry.value["id"])


def fill_registration(page: TablesPage, **values: object) -> None:
    page.register_tab().form.fields["source_type"].widget.value = values.pop("source_type", "files")
    page.register_tab().form.set_values(values)


def test_the_register_tab_is_built_when_it_is_first_opened(page: TablesPage) -> None:
    assert page.register_area.objects == []  # the page's first paint does not carry it
    page.tabs.active = 1  # opening the tab builds it
    assert len(page.register_area.objects) == 1
    built = page.register_tab()
    assert page.register_area.objects == [built.view]
    page.tabs.active = 0
    page.tabs.active = 1
    assert page.register_tab() is built  # once: what was typed there stays
    assert built.form.fields["source_type"].widget.options  # the sources to pick from


def test_the_registry_lists_and_filters(synced: Services, page: TablesPage) -> None:
    register(synced, id="people", source_type="files", source_table="people.csv")
    register(synced, id="gen", source_type="sample", name="Generated")
    register(
        synced, id="events", source_type="warehouse", source_table="events", query_mode="remote"
    )
    synced.sync.sync("gen")
    page.refresh()
    assert listed(page) == ["events", "gen", "people"]
    assert page.registry.pagination == "remote"

    page.source_filter.value = "sample"
    assert listed(page) == ["gen"]
    page.source_filter.value = "(all)"
    page.mode_filter.value = "remote"
    assert listed(page) == ["events"]
    page.mode_filter.value = "(all)"
    page.status_filter.value = "ok"
    assert listed(page) == ["gen"]
    assert page.registry.value.iloc[0]["rows"] == 100
    page.status_filter.value = "never"
    assert listed(page) == ["events", "people"]
    # found by a part of the id or the name, with the other filters
    page.text_filter.value = "PEO"
    assert listed(page) == ["people"]
    page.status_filter.value = "(all)"
    page.text_filter.value = " generated "
    assert listed(page) == ["gen"]
    page.text_filter.value = ""
    assert listed(page) == ["events", "gen", "people"]


def test_source_tables_fill_the_form_and_the_options_follow_the_connector(
    page: TablesPage,
) -> None:
    fill_registration(page, source_type="files")
    assert list(page.register_tab().offered.value["source_table"]) == ["people.csv"]
    assert "delimiter" in page.register_tab().options.fields  # the files connector's options
    page.register_tab().offered.selection = [0]
    fields = page.register_tab().form.fields
    assert fields["id"].widget.value == "people"
    assert fields["source_table"].widget.value == "people.csv"

    fill_registration(page, source_type="sample")
    assert set(page.register_tab().options.fields) >= {"rows", "seed", "failure"}
    assert "delimiter" not in page.register_tab().options.fields


def test_dry_run_validates_and_saves_nothing(synced: Services, page: TablesPage) -> None:
    fill_registration(page, id="people", source_table="people.csv", primary_key=["id"])
    click(page.register_tab().dry_run_button)
    assert page.register_tab().form.errors == {}
    assert "Would be saved" in str(page.register_tab().result.object)
    assert "`joined`" in str(page.register_tab().result.object)
    assert "nothing was saved" in str(page.message.object)
    assert [t.id for t in synced.registry.all()] == []
    assert audit_rows(synced, "registry.register") == []
    # a second dry run the form itself refuses: the first one's "valid" is not left up
    page.register_tab().form.set_values({"id": "Bad Id!"})
    click(page.register_tab().dry_run_button)
    assert "id" in page.register_tab().form.errors
    assert "is valid" not in str(page.message.object)
    assert page.message.alert_type == "warning" and "fix the fields" in str(page.message.object)


def test_register_saves_and_the_audit_names_the_admin(
    synced: Services, page: TablesPage, admin_user: User
) -> None:
    page.register_tab().sync_after.value = False
    fill_registration(page, id="people", source_table="people.csv", description="Everyone")
    page.register_tab().options.set_values({"delimiter": ",", "header": True})
    click(page.register_tab().save_button)
    assert page.message.alert_type == "success", page.message.object
    stored = synced.registry.get("people")
    assert stored.description == "Everyone"
    assert stored.source_options == {"delimiter": ",", "header": True}
    assert stored.registered_by == admin_user.id
    assert "people" in listed(page)
    [row] = audit_rows(synced, "registry.register")
    assert (row.user_id, row.resource) == (admin_user.id, "people")


def test_register_with_a_first_sync(synced: Services, page: TablesPage) -> None:
    fill_registration(page, id="gen", source_type="sample")
    page.register_tab().options.set_values({"rows": "1234"})
    click(page.register_tab().save_button)
    # the first sync's outcome replaces "under way" once it is done, and the registry
    # shows it, with no reload (a count as the registry shows it: "1,234", not "1234")
    assert page.message.alert_type == "success"
    assert str(page.message.object).startswith("Synced 'gen': 1,234 rows in ")
    row = page.registry.value.set_index("id").loc["gen"]
    assert (row["status"], row["rows"]) == ("ok", 1234)
    assert [r.trigger for r in synced.sync_states.history("gen")] == ["registration"]
    assert synced.registry.get("gen").source_options == {"rows": 1234}


@pytest.mark.parametrize(
    ("values", "options", "field", "words"),
    [
        ({"id": "Bad-Name", "source_table": "people.csv"}, {}, "id", "lowercase"),
        ({"id": "p1", "source_table": "absent.csv"}, {}, "source_table", "people.csv"),
        (
            {"id": "p2", "source_table": "people.csv", "primary_key": ["idd"]},
            {},
            "primary_key",
            "Did you mean 'id'",
        ),
        (
            {"id": "p3", "source_table": "people.csv", "sync_strategy": "incremental"},
            {},
            "incremental_column",
            "incremental-column",
        ),
        (
            {"id": "p4", "source_table": "people.csv", "sync_schedule": "whenever"},
            {},
            "sync_schedule",
            "every 15m",
        ),
        (
            {"id": "p5", "source_table": "people.csv", "query_mode": "remote"},
            {},
            "query_mode",
            "remote",
        ),
        (
            {"id": "p6", "source_table": "people.csv", "where_filters": "id IN (SELECT 1)"},
            {},
            "where_filters",
            "subqueries",
        ),
        (
            {"id": "p7", "source_table": "people.csv", "max_history_days": "soon"},
            {},
            "max_history_days",
            "integer",
        ),
        ({"id": "p8", "source_table": "people.csv"}, {"delimiter": ";;;;;"}, "delimiter", "4"),
    ],
)
def test_bad_input_is_shown_beside_the_field_and_nothing_is_saved(
    synced: Services,
    page: TablesPage,
    values: dict[str, object],
    options: dict[str, object],
    field: str,
    words: str,
) -> None:
    fill_registration(page, **values)
    page.register_tab().options.set_values(options)
    for button in (page.register_tab().dry_run_button, page.register_tab().save_button):
        click(button)
        form = (
            page.register_tab().options
            if field in page.register_tab().options.fields
            else page.register_tab().form
        )
        assert set(form.errors) == {field}, form.errors
        assert words in form.errors[field]
    assert synced.registry.all() == []
    assert audit_rows(synced, "registry.register") == []


def test_a_message_quoting_a_cron_reads_as_typed_not_as_markdown(
    synced: Services, page: TablesPage
) -> None:
    """The panes render Markdown: "'*/0 * * * *' is not a schedule ... '*/10 * * * *'"
    showed as italics with its asterisks gone, beside the field and atop the page."""
    from markdown_it import MarkdownIt

    def shown(markdown: object) -> str:  # the text the browser shows
        html = MarkdownIt("commonmark").render(str(markdown))
        return re.sub(r"<[^>]+>", "", html).strip()

    fill_registration(page, id="p9", source_table="people.csv", sync_schedule="*/0 * * * *")
    click(page.register_tab().dry_run_button)
    beside = page.register_tab().form.fields["sync_schedule"].error.object
    for text in (shown(beside), shown(page.message.object)):
        assert "'*/0 * * * *' is not a schedule" in text and "'*/10 * * * *'" in text


def test_a_missing_source_is_shown_beside_the_source(synced: Services, page: TablesPage) -> None:
    click(page.register_tab().save_button)
    assert "source_type" in page.register_tab().form.errors
    assert "id" in page.register_tab().form.errors  # required fields are named too
    assert synced.registry.all() == []


def test_edit_a_table(synced: Services, page: TablesPage, admin_user: User) -> None:
    register(
        synced,
        id="people",
        source_type="files",
        source_table="people.csv",
        source_options={"format": "auto", "delimiter": ","},  # stored with a default
    )
    page.refresh()
    page.select("people")
    form = page.edit_form
    assert form is not None and page.edit_options is not None
    assert form.fields["id"].widget.disabled
    assert form.fields["source_table"].widget.value == "people.csv"
    assert page.edit_options.fields["delimiter"].widget.value == ","

    form.set_values({"description": "Updated", "primary_key": ["nope"]})
    click(page.edit_save)
    assert "nope" in form.errors["primary_key"]
    assert synced.registry.get("people").description == ""

    form.set_values({"primary_key": ["id"]})
    click(page.edit_dry_run)
    assert form.errors == {}
    assert synced.registry.get("people").description == ""
    click(page.edit_save)
    stored = synced.registry.get("people")
    assert (stored.description, stored.primary_key) == ("Updated", ["id"])
    assert "Changed: description, primary_key" in str(page.edit_result.object)
    assert "A sync applying it has started" in str(page.message.object)  # a new key
    resync = synced.sync.scheduler.latest("people")
    assert resync is not None and resync.result(timeout=60).status == "ok"  # type: ignore[attr-defined]
    assert page.edit_form is not None and page.edit_form.errors == {}
    [row] = audit_rows(synced, "registry.update")
    assert row.user_id == admin_user.id
    assert row.params == {"changed": ["description", "primary_key"]}


def test_unregister_asks_first(synced: Services, page: TablesPage, admin_user: User) -> None:
    register(synced, id="people", source_type="files", source_table="people.csv")
    page.refresh()
    page.select("people")
    click(page.unregister_button)
    assert page.confirmation.visible
    click(page.cancel_unregister)
    assert not page.confirmation.visible
    assert [t.id for t in synced.registry.all()] == ["people"]

    click(page.unregister_button)
    click(page.confirm_unregister)
    assert synced.registry.all() == []
    assert listed(page) == [] and page.selected is None and not page.details.visible
    [row] = audit_rows(synced, "registry.unregister")
    assert (row.user_id, row.resource) == (admin_user.id, "people")


def test_sync_now_and_what_a_synced_table_shows(
    synced: Services, page: TablesPage, admin_user: User
) -> None:
    register(synced, id="people", source_type="files", source_table="people.csv")
    readers = synced.groups.add("Readers")
    synced.grants.add(readers.id, ResourceType.TABLE, "people", granted_by=admin_user.id)
    page.refresh()
    page.select("people")
    click(page.sync_button)
    assert page.message.alert_type == "success", page.message.object
    assert "2 rows" in str(page.message.object)
    assert synced.sync_states.get("people").status == "ok"  # type: ignore[union-attr]
    assert page.registry.value.iloc[0]["status"] == "ok"
    # In UTC, saying so, as every admin page writes a moment (not the browser's zone).
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", page.registry.value.iloc[0]["last_success"]
    )
    [row] = audit_rows(synced, "sync.trigger")
    assert (row.user_id, row.resource) == (admin_user.id, "people")

    click(page.sync_button)
    plot = page.history_plot.object
    assert plot is not None
    data = plot.children[0].renderers[0].data_source.data
    assert list(data["outcome"]) == ["ok", "ok"] and list(data["rows"]) == [2, 2]
    profile = page.profile_table.value
    assert list(profile["name"]) == ["id", "name", "joined"]
    assert {"null_share", "distinct_estimate"} <= set(profile.columns)
    assert list(page.grants_table.value["group"]) == ["Readers"]
    assert page.grants_table.value.iloc[0]["granted_at"].endswith(" UTC")
    assert page.grants_table.value.iloc[0]["granted_by"] == admin_user.email  # not the id
    assert page.view.get_root(Document()) is not None  # the page renders, plot included


def test_a_failed_sync_is_reported_in_red(synced: Services, page: TablesPage) -> None:
    register(
        synced,
        id="broken",
        source_type="sample",
        source_options={"fail_times": 5, "failure": "terminal"},
    )
    page.refresh()
    page.select("broken")
    click(page.sync_button)
    assert page.message.alert_type == "danger"
    assert "injected terminal failure" in str(page.message.object)
    data = page.history_plot.object.children[0].renderers[0].data_source.data
    assert list(data["outcome"]) == ["error"] and data["colour"][0] == "#c62828"


def test_a_revoked_session_changes_nothing(
    synced: Services, context: PageContext, page: TablesPage
) -> None:
    register(synced, id="people", source_type="files", source_table="people.csv")
    page.refresh()
    page.select("people")
    synced.web_sessions.sign_out(context.session_id)

    fill_registration(page, id="other", source_table="people.csv")
    click(page.register_tab().save_button)
    assert page.message.alert_type == "danger"
    assert "session" in str(page.message.object) and "/auth/login" in str(page.message.object)
    click(page.sync_button)
    click(page.unregister_button)
    click(page.confirm_unregister)
    page.edit_form.set_values({"description": "Changed"})  # type: ignore[union-attr]
    click(page.edit_save)
    assert "session" in str(page.message.object)
    assert [t.id for t in synced.registry.all()] == ["people"]
    assert synced.registry.get("people").description == ""
    assert synced.sync_states.get("people") is None
    synced.write_behind.flush()
    assert synced.audit_log.recent() == []


def test_a_thousand_tables_build_a_page(synced: Services, context: PageContext) -> None:
    with synced.store.transaction() as cur:  # one statement: 1,000 registrations one by one
        cur.execute(  # take seconds of commits, and the page is what this test is about
            "INSERT INTO table_registry (id, name, source_type, sync_schedule) "
            "SELECT printf('t%04d', range), printf('t%04d', range), 'sample', 'daily 03:00' "
            "FROM range(1000)"
        )
    assert len(synced.registry.all()) == 1000
    page = TablesPage(context)
    assert len(page.registry.value) == 1000
    assert page.registry.value.iloc[0]["next_run"].endswith(" UTC")
    root = page.view.get_root(Document())
    [grid] = [
        m for m in root.select({"type": DataTabulator}) if m.source.data.get("id") is not None
    ]
    assert len(grid.source.data["id"]) == page.registry.page_size <= 50  # one page is sent
    page.select("t0999")
    assert page.title.object.startswith("### t0999")


def test_a_table_unregistered_elsewhere_is_dropped_from_view(
    synced: Services, page: TablesPage
) -> None:
    register(synced, id="people", source_type="files", source_table="people.csv")
    page.refresh()
    synced.sync.unregister("people")  # say, through the CLI
    page.select("people")
    assert page.selected is None and not page.details.visible
    assert "No table 'people'" in str(page.message.object)
    # selected before it went: Unregister and Sync now say so and drop it from the list
    register(synced, id="people", source_type="files", source_table="people.csv")
    page.refresh()
    page.select("people")
    synced.sync.unregister("people")
    click(page.unregister_button)
    click(page.confirm_unregister)
    assert "unregistered meanwhile" in str(page.message.object)
    assert "people" not in listed(page) and not page.details.visible


def test_the_rest_registry_takes_the_same_filters(tmp_path: Path) -> None:
    sources = {"sample": {"connector": "sample"}}
    with (
        running_server(tmp_path / "data", sources=sources, scheduler_enabled=False) as live,
        live.client(live.admin_token) as api,
    ):
        for table_id in ("one", "two"):
            body = {"id": table_id, "source_type": "sample"}
            response = api.post("/api/admin/register-table", json=body, params={"sync": "false"})
            assert response.status_code == 201, response.text
        api.post("/api/sync/trigger", json={"table_id": "one"})

        def ids(**params: str) -> list[str]:
            response = api.get("/api/admin/registry", params=params)
            assert response.status_code == 200, response.text
            return [t["id"] for t in response.json()["tables"]]

        assert ids() == ["one", "two"]
        assert ids(status="ok") == ["one"]
        assert ids(status="never", source="sample", mode="local") == ["two"]
        assert ids(source="elsewhere") == []
        assert api.get("/api/admin/registry", params={"mode": "sideways"}).status_code == 422


def test_the_sync_timeline_reads_well_with_one_run() -> None:
    """One run (or runs close together): the time axis spans an hour, not microseconds,
    and the counts read as counts from zero (1,000,001, not 1.0000010e+6)."""
    import datetime as dt

    from bokeh.models import NumeralTickFormatter

    from agnes_admin.sync_timeline import MIN_SPAN, history_figure
    from agnes_mcp.store.sync_state import SyncRun

    at = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    run = SyncRun(
        id=1,
        table_id="t",
        started_at=at,
        finished_at=at,
        status="ok",
        rows=1_000_001,
        size_bytes=None,
        error=None,
        trigger="schedule",
        attempts=1,
        duration_ms=463.5,
    )
    duration, rows = history_figure([run]).children
    span = duration.x_range.end - duration.x_range.start
    assert span >= MIN_SPAN and duration.x_range.start < at < duration.x_range.end
    assert rows.y_range.start == 0 and rows.y_range.end > 1_000_001
    assert isinstance(rows.yaxis[0].formatter, NumeralTickFormatter)
    # The time axis and the hover say their zone, as every admin page writes a moment.
    assert rows.xaxis[0].axis_label == "started (UTC)"
    assert ("started", "@started{%F %T} UTC") in duration.hover[0].tooltips
    later = run.model_copy(update={"id": 2, "started_at": at + dt.timedelta(days=3)})
    wide = history_figure([run, later]).children[0].x_range
    assert wide.start < at and wide.end > later.started_at  # a wide span is kept, padded
    assert duration.title.text == "Sync runs"
    cut = history_figure([run, later], more=True).children[0]  # older runs left out: said
    assert cut.title.text == "Sync runs: the latest 2; older runs are not shown"


def test_the_timeline_says_when_older_runs_are_left_out(synced: Services, page: TablesPage) -> None:
    from agnes_admin.sync_timeline import HISTORY_RUNS

    register(synced, id="gen", source_type="sample", source_options={"rows": 1})
    at = datetime(2026, 11, 1, tzinfo=UTC)
    for minute in range(HISTORY_RUNS + 1):
        synced.sync_states.started("gen", "schedule", at + timedelta(minutes=minute))
    page.refresh()
    page.select("gen")
    figure = page.history_plot.object.children[0]
    assert figure.title.text.endswith("older runs are not shown")
    assert len(figure.renderers[0].data_source.data["started"]) == HISTORY_RUNS


def test_the_usage_chart_counts_in_a_readable_unit() -> None:
    from agnes_admin.pages.usage import _unit

    assert _unit(40_000_000) == ("MiB", 1024**2)
    assert _unit(3 * 1024**3) == ("GiB", 1024**3)
    assert _unit(500) == ("bytes", 1)


def test_two_tabs_editing_one_table_lose_nothing(
    synced: Services, page: TablesPage, context: PageContext
) -> None:
    """Tab B, opened before tab A saved a new description, saved only a schedule and put
    the old description back. Now a tab changes only what it changed; a field changed
    elsewhere since the tab opened is refused there, with what to do."""
    register(synced, id="people", source_type="files", source_table="people.csv")
    second, third = TablesPage(context), TablesPage(context)
    for tab in (page, second, third):
        tab.refresh()
        tab.select("people")
    assert page.edit_form and second.edit_form and third.edit_form
    page.edit_form.set_values({"description": "From tab A"})
    click(page.edit_save)
    second.edit_form.set_values({"sync_schedule": "every 2h"})
    click(second.edit_save)
    stored = synced.registry.get("people")
    assert (stored.description, stored.sync_schedule) == ("From tab A", "every 2h")
    third.edit_form.set_values({"description": "From tab C"})
    click(third.edit_save)
    assert synced.registry.get("people").description == "From tab A"
    assert "changed elsewhere since you opened it (description)" in str(third.message.object)


def test_what_is_typed_in_edit_survives_a_sync_ending_and_a_filter(
    synced: Services, page: TablesPage
) -> None:
    """A sync's outcome (or a filter changed) reloaded the registry and rebuilt the Edit
    form of the table shown from what was stored: the description being typed was gone,
    and an open Unregister question with it. The table shown keeps both now; a save
    still reads the form again from what was stored."""
    register(synced, id="people", source_type="files", source_table="people.csv")
    register(synced, id="gen", source_type="sample")
    page.refresh()
    page.select("people")
    assert page.edit_form is not None
    page.edit_form.set_values({"description": "Being typed"})
    click(page.unregister_button)
    click(page.sync_button)  # its outcome reloads the registry (here, at once)
    assert "Synced 'people'" in str(page.message.object)
    assert page.edit_form.fields["description"].widget.value == "Being typed"
    assert page.confirmation.visible
    page.mode_filter.value = "local"
    assert page.selected == "people"
    assert page.edit_form.fields["description"].widget.value == "Being typed"

    click(page.cancel_unregister)
    click(page.edit_save)
    assert synced.registry.get("people").description == "Being typed"
    assert page.edit_form.fields["description"].widget.value == "Being typed"
    page.select("gen")  # another table: its own stored values
    assert page.edit_form.fields["description"].widget.value == ""
    assert "Being typed" not in str(page.edit_result.object)


def test_a_slow_source_listing_never_holds_a_page_thread(
    page: TablesPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Choosing a source in "Register a table" listed its tables on the page thread every
    admin shares (a remote API, retried: minutes on a slow one), so four such choices froze
    every admin's pages. The choice now returns at once and says the tables are being read;
    they show on the page's next tick, and a listing that ends after another source was
    chosen is not shown over that one's."""
    from agnes_mcp.registry_admin import RegistryAdmin

    listing = RegistryAdmin.source_tables
    started, go = threading.Event(), threading.Event()

    def slow(self: RegistryAdmin, source: str) -> Any:
        if source == "files":
            started.set()
            go.wait(30)
        return listing(self, source)

    monkeypatch.setattr(RegistryAdmin, "source_tables", slow)
    tab = page.register_tab()
    doc = Document()

    def choose(source: str) -> None:
        with set_curdoc(doc):
            tab.form.fields["source_type"].widget.value = source

    chose = threading.Thread(target=choose, args=("files",), daemon=True)
    chose.start()
    chose.join(10)
    returned = not chose.is_alive()
    assert started.wait(10)
    assert returned, "choosing the source waited for its listing"
    assert "Reading the tables files offers" in str(tab.offered_error.object)
    choose("warehouse")  # chosen before the slow listing ends
    go.set()
    run_next_ticks(doc, 2)  # each listing hands its outcome to the page's next tick
    assert tab.offered_error.object == ""
    assert list(tab.offered.value["source_table"]) == ["events"]  # the warehouse's, still


def test_counts_read_as_whole_numbers_beside_a_table_never_synced(
    synced: Services, page: TablesPage
) -> None:
    """One table never synced (no rows, no size) made the columns float, and the browser
    showed every synced table's counts with a decimal: "10.0" rows, "1,310,720.0" bytes."""
    register(synced, id="gen", source_type="sample")
    register(synced, id="people", source_type="files", source_table="people.csv")
    synced.sync.sync("gen")
    page.refresh()
    model = page.registry.get_root(Document())
    columns = model.columns  # type: ignore[attr-defined]
    formats = {c.field: getattr(c.formatter, "format", None) for c in columns}
    assert formats["rows"] == formats["size_bytes"] == "0,0"  # as the browser shows them
    assert page.registry.value.set_index("id").loc["gen", "rows"] == 100


def test_usage_counts_bytes_in_whole_numbers_beside_a_query_without_them() -> None:
    from agnes_admin.pages.usage import _tops
    from agnes_mcp.usage_report import TopQuery

    at = datetime(2026, 1, 2, tzinfo=UTC)
    common: dict[str, Any] = {"at": at, "user_id": "u", "email": None, "action": "query"}
    frame = _tops(
        [
            TopQuery(id=1, result="ok", bytes_scanned=2048, duration_ms=1.0, sql="1", **common),
            TopQuery(id=2, result="ok", bytes_scanned=None, duration_ms=None, sql="2", **common),
        ]
    )
    assert str(frame["bytes_scanned"].dtype) == "Int64" and frame["bytes_scanned"][0] == 2048


def test_a_double_click_on_yes_unregister_says_it_was_unregistered(
    synced: Services, page: TablesPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both clicks of a double click on a confirmation ran, side by side on the page
    threads: one unregistered the table and the other, refused, left the page saying
    "Nothing was changed: … It was unregistered meanwhile." The second click is dropped."""
    from agnes_mcp.registry_admin import RegistryAdmin

    register(synced, id="people", source_type="files", source_table="people.csv")
    page.refresh()
    page.select("people")
    unregister = RegistryAdmin.unregister
    inside, go = threading.Event(), threading.Event()

    def slow(self: RegistryAdmin, *args: Any, **kwargs: Any) -> Any:
        if not inside.is_set():  # the first click waits inside until the second has come
            inside.set()
            go.wait(30)
        return unregister(self, *args, **kwargs)

    monkeypatch.setattr(RegistryAdmin, "unregister", slow)
    click(page.unregister_button)
    first = threading.Thread(target=click, args=(page.confirm_unregister,), daemon=True)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=click, args=(page.confirm_unregister,), daemon=True)
    second.start()
    second.join(10)
    go.set()
    first.join(30)
    assert page.message.alert_type == "success", page.message.object
    assert "Unregistered 'people'" in str(page.message.object)
    assert len(audit_rows(synced, "registry.unregister")) == 1


def test_checking_against_a_slow_source_never_holds_a_page_thread(
    synced: Services, page: TablesPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dry run and Save (registering or editing) asked the source on the page threads every
    admin shares: minutes on a slow source, and four such clicks froze every admin's pages.
    The click now returns at once; the outcome shows on the page's next tick, and a click
    while the source is still being asked is dropped (not a second registration)."""
    started, go = threading.Event(), threading.Event()
    validate = synced.sync.validate
    asked: list[str] = []

    def slow(spec: Any) -> Any:
        asked.append(spec.id)
        started.set()
        go.wait(30)
        return validate(spec)

    monkeypatch.setattr(synced.sync, "validate", slow)
    tab = page.register_tab()
    fill_registration(page, id="people", source_table="people.csv")
    doc = Document()

    def click_in_page(button: Any) -> None:
        with set_curdoc(doc):
            click(button)

    clicked = threading.Thread(target=click_in_page, args=(tab.save_button,), daemon=True)
    clicked.start()
    clicked.join(10)
    returned = not clicked.is_alive()
    assert started.wait(10)
    assert returned, "the click waited for the source"
    assert "Checking 'people' against its source" in str(page.message.object)
    click_in_page(tab.save_button)  # while the source is being asked: dropped
    go.set()
    run_next_ticks(doc, 1)
    assert "Registered 'people'" in str(page.message.object), page.message.object
    assert asked == ["people"] and [t.id for t in synced.registry.all()] == ["people"]
    assert listed(page) == ["people"]


def run_next_ticks(doc: Document, count: int) -> None:
    """Run the page's next-tick callbacks once ``count`` of them are there (the outcomes
    handed back by work done off the page threads)."""
    deadline = time.monotonic() + 30
    while len(doc.session_callbacks) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    for callback in list(doc.session_callbacks):
        doc.remove_next_tick_callback(callback)  # type: ignore[arg-type]
        callback.callback()


def test_a_double_click_on_sync_now_syncs_once(synced: Services, page: TablesPage) -> None:
    """The second click of a double click on Sync now (the first returns at once) queued
    a second sync and audited it twice. Until its outcome shows, the table's Sync now
    starts nothing more; then it syncs again."""
    register(synced, id="gen", source_type="sample")
    page.refresh()
    page.select("gen")
    doc = Document()
    with set_curdoc(doc):
        click(page.sync_button)
        click(page.sync_button)  # the double click's second
    run_next_ticks(doc, 1)
    assert "Synced 'gen'" in str(page.message.object)
    assert len(audit_rows(synced, "sync.trigger")) == 1
    assert len(synced.sync_states.history("gen")) == 1
    with set_curdoc(doc):
        click(page.sync_button)  # once the outcome is shown: a new sync
    run_next_ticks(doc, 1)
    assert len(audit_rows(synced, "sync.trigger")) == 2
