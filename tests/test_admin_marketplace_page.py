"""The admin app's Marketplaces page: in plain Python against real services (add through
the form, problems beside their field and no secret echoed, Sync and Remove from a row's
buttons, plugins with the groups granted them, nothing done for a signed-out admin), and
once in a real Chromium against a running server (add through the form, see it listed,
see a plugin seeded through the store)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from bokeh.document import Document
from panel.io.state import set_curdoc
from panel.models.tabulator import CellClickEvent

from agnes_admin.context import PageContext
from agnes_admin.pages.marketplaces import MarketplacesPage
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.audit import AuditRow
from agnes_mcp.store.users import User
from tests.conftest import add_user, make_settings
from tests.git_upstream import UpstreamRepo, sample_marketplace, serving
from tests.test_api_marketplaces import seed_plugins


@pytest.fixture
def settings(tmp_path: Path) -> AgnesSettings:
    return make_settings(
        tmp_path / "data",
        write_behind_seconds=0.05,
        marketplace={"allow_local": True, "token_envs": ["NOT_SET_HERE"]},
    )


@pytest.fixture
def admin(services: Services) -> User:
    return add_user(services, (ADMIN_GROUP_ID,), email="boss@example.com")


@pytest.fixture
def ctx(services: Services, admin: User) -> PageContext:
    session, _ = services.web_sessions.sign_in(admin.id, "token")
    return PageContext(services, session.id)


@pytest.fixture
def page(ctx: PageContext) -> MarketplacesPage:
    return MarketplacesPage(ctx)


def click(button: Any) -> None:
    button.clicks += 1


def click_cell(page: MarketplacesPage, column: str, slug: str) -> None:
    """A click on a row's button, as the browser sends it."""
    row = list(page.table.value["slug"]).index(slug)
    page.table._process_event(CellClickEvent(model=None, column=column, row=row))


def fill(page: MarketplacesPage, **values: Any) -> None:
    for name, value in values.items():
        page.form.fields[name].widget.value = value


def audit(services: Services, action: str) -> list[AuditRow]:
    services.write_behind.flush()
    return [r for r in services.audit_log.recent(limit=500) if r.action == action]


def rows(page: MarketplacesPage) -> dict[str, dict[str, Any]]:
    return {r["slug"]: r for r in page.table.value.to_dict("records")}


def test_add_through_the_form_lists_it(
    services: Services, page: MarketplacesPage, admin: User, tmp_path: Path
) -> None:
    url = str(tmp_path / "missing.git")
    fill(page, slug="data-team", url=url, name="Data team", token_env="NOT_SET_HERE")
    click(page.add_button)

    assert page.form.errors == {}
    assert page.added.visible and "Added marketplace 'data-team'" in str(page.added.object)
    assert "NOT_SET_HERE is not set" in str(page.added.object)
    row = rows(page)["data-team"]
    assert (row["name"], row["url"], row["token_env"], row["token_set"]) == (
        "Data team",
        url,
        "NOT_SET_HERE",
        "NOT SET",
    )
    assert services.marketplaces.get("data-team").added_by == admin.id
    assert page.form.fields["slug"].widget.value == ""  # the form is cleared
    (entry,) = audit(services, "marketplace.add")
    assert (entry.user_id, entry.resource) == (admin.id, "data-team")


def test_the_first_sync_of_one_added_shows_its_outcome_without_a_refresh(
    services: Services, page: MarketplacesPage, tmp_path: Path
) -> None:
    upstream = UpstreamRepo(tmp_path / "upstream")
    commit = sample_marketplace(upstream)
    fill(page, slug="good", url=str(upstream.path))  # "Sync at once" is on
    click(page.add_button)
    said = str(page.added.object)
    assert said == f"Added marketplace 'good'. 'good' synced: {commit[:12]}, 2 plugin(s)."
    assert page.added.alert_type == "success" and "Refresh" not in said
    assert (rows(page)["good"]["outcome"], rows(page)["good"]["plugins"]) == ("ok", 2)
    fill(page, slug="broken", url=str(tmp_path / "missing.git"))
    click(page.add_button)
    assert page.added.alert_type == "danger" and "'broken' failed:" in str(page.added.object)


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"slug": "Bad Slug!", "url": "https://git.example.com/p.git"}, "slug", "lowercase"),
        ({"slug": "ok", "url": "ssh://git.example.com/p.git"}, "url", "not an https:// URL"),
        ({"slug": "ok", "url": ""}, "url", "required"),
        ({"slug": "ok", "url": "https://git.example.com/p.git", "ref": "a..b"}, "ref", "branch"),
    ],
)
def test_bad_input_is_shown_beside_the_field_and_adds_nothing(
    services: Services, page: MarketplacesPage, values: dict[str, str], field: str, words: str
) -> None:
    fill(page, **values)
    click(page.add_button)
    assert words in page.form.errors[field], page.form.errors
    assert services.marketplaces.all() == [] and not page.added.visible


def test_credentials_and_tokens_are_refused_and_not_echoed(
    services: Services, page: MarketplacesPage
) -> None:
    fill(page, slug="p", url="https://ada:ghp_S3cretValue@git.example.com/p.git", sync=False)
    click(page.add_button)
    assert "credentials" in page.form.errors["url"]
    fill(page, url="https://git.example.com/p.git", token_env="ghp_S3cretValue")
    click(page.add_button)
    assert "never the token itself" in page.form.errors["token_env"]
    assert "S3cretValue" not in repr(page.form.errors)
    assert services.marketplaces.all() == []
    fill(page, slug="p", token_env="")
    click(page.add_button)
    assert [m.slug for m in services.marketplaces.all()] == ["p"]
    fill(page, slug="p", url="https://git.example.com/other.git")
    click(page.add_button)
    assert "registered already" in page.form.errors["slug"]


def test_sync_from_a_row_waits_and_shows_the_outcome(
    services: Services, page: MarketplacesPage, tmp_path: Path
) -> None:
    upstream = UpstreamRepo(tmp_path / "upstream")
    commit = sample_marketplace(upstream)
    services.marketplaces.add("good", str(upstream.path), added_by="test", sync=False)
    services.marketplaces.add("broken", str(tmp_path / "missing.git"), added_by="test", sync=False)
    page.refresh()

    click_cell(page, "sync", "good")
    assert page.actions.message.alert_type == "success"
    assert f"'good' synced: {commit[:12]}, 2 plugin(s)." in str(page.actions.message.object)
    good = rows(page)["good"]
    assert (good["outcome"], good["serving"], good["plugins"]) == ("ok", commit[:12], 2)
    assert {p for p in page.plugins_table.value["grant_id"]} == {"good/notes", "good/sql-review"}

    click(page.sync_all_button)
    assert page.actions.message.alert_type == "danger"
    assert "'broken' failed:" in str(page.actions.message.object)
    assert rows(page)["broken"]["outcome"] == "failed" and rows(page)["broken"]["error"]
    assert rows(page)["good"]["outcome"] == "ok"
    assert {e.resource for e in audit(services, "marketplace.sync")} == {"good", "*"}


def test_remove_needs_confirmation_and_takes_the_grants(
    services: Services, page: MarketplacesPage
) -> None:
    services.marketplaces.add("team", "https://git.example.com/t.git", added_by="t", sync=False)
    seed_plugins(services, "team", "sql-helper", "dashboards")
    group = services.groups.add("Analysts")
    services.grants.add(group.id, ResourceType.MARKETPLACE_PLUGIN, "team/sql-helper")
    page.refresh()
    plugins = page.plugins_table.value.to_dict("records")
    assert [(p["grant_id"], p["groups"], p["version"]) for p in plugins] == [
        ("team/dashboards", "", "1.0.0"),
        ("team/sql-helper", "Analysts", "1.0.0"),
    ]

    click_cell(page, "remove", "team")
    assert page.confirm.view.visible and "2 plugin(s)" in str(page.confirm.text.object)
    click(page.confirm.no)
    assert [m.slug for m in services.marketplaces.all()] == ["team"]

    click_cell(page, "remove", "team")
    click(page.confirm.yes)
    assert services.marketplaces.all() == [] and services.grants.all(group_id=group.id) == []
    assert "2 plugin(s) no longer served, 1 grant(s) removed" in str(page.actions.message.object)
    assert page.table.value.empty and page.plugins_table.value.empty
    (entry,) = audit(services, "marketplace.remove")
    assert entry.params == {"plugins": 2, "grants": 1}


def test_a_signed_out_admin_changes_nothing(
    services: Services, page: MarketplacesPage, ctx: PageContext
) -> None:
    services.marketplaces.add("team", "https://git.example.com/t.git", added_by="t", sync=False)
    page.refresh()
    services.web_sessions.sign_out(ctx.session_id)
    fill(page, slug="more", url="https://git.example.com/m.git", sync=False)
    click(page.add_button)
    assert "signed out" in page.form.errors[""]
    click_cell(page, "remove", "team")
    click(page.confirm.yes)
    assert "signed out" in str(page.actions.message.object)
    click_cell(page, "sync", "team")
    assert [m.slug for m in services.marketplaces.all()] == ["team"]
    assert services.marketplaces.get("team").last_sync_at is None
    assert audit(services, "marketplace.add") == audit(services, "marketplace.sync") == []


def test_a_sync_click_never_holds_a_page_thread_while_the_fetch_runs(
    services: Services, page: MarketplacesPage, tmp_path: Path
) -> None:
    """A Sync click waited on the page thread for the whole fetch (up to
    git_timeout_seconds on a slow host): four such clicks froze every admin's pages. The
    click now returns at once; the outcome is shown on the page's next tick once the sync
    is done."""
    upstream = UpstreamRepo(tmp_path / "served" / "plugins")
    commit = sample_marketplace(upstream)
    with serving(upstream.path.parent) as server:
        services.marketplaces.add("slow", server.url("plugins"), added_by="test", sync=False)
        page.refresh()
        server.gate.clear()  # the fetch waits at the server
        doc = Document()
        clicked = threading.Thread(target=lambda: _sync_in(doc, page, "slow"), daemon=True)
        clicked.start()
        clicked.join(10)
        returned = not clicked.is_alive()
        assert server.at_gate.wait(30)
        server.gate.set()
        assert returned, "the click waited for the fetch"
        assert "Syncing slow" in str(page.actions.message.object)
        future = services.marketplaces.future("slow")
        if future is not None:
            future.result(timeout=60)
        # the outcome arrives as a next-tick callback of the page, from the thread that
        # waited for the sync (after the future's own waiters: a moment, or seconds on a
        # busy machine; a 5 s look went on without it, to a confusing failure below)
        deadline = time.monotonic() + 60
        while not (callbacks := list(doc.session_callbacks)):
            assert time.monotonic() < deadline, "the sync's outcome never reached the page"
            time.sleep(0.05)
        for callback in callbacks:
            doc.remove_next_tick_callback(callback)  # type: ignore[arg-type]
            callback.callback()
    assert f"'slow' synced: {commit[:12]}" in str(page.actions.message.object)
    assert rows(page)["slow"]["outcome"] == "ok"


def run_ticks(doc: Document) -> None:
    """Run the page's next-tick callbacks once one has arrived (from a background thread)."""
    deadline = time.monotonic() + 60
    while not (callbacks := list(doc.session_callbacks)):
        assert time.monotonic() < deadline, "the outcome never reached the page"
        time.sleep(0.05)
    for callback in callbacks:
        doc.remove_next_tick_callback(callback)  # type: ignore[arg-type]
        callback.callback()


def test_an_add_never_holds_a_page_thread_while_the_host_is_looked_up(
    services: Services, page: MarketplacesPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Add looked the URL's host up on the page thread: a DNS answering slowly (seconds
    per try) held one of the few threads every admin's pages share. The click returns at
    once; the outcome shows on the page's next tick, and a second click meanwhile adds
    nothing more."""
    answer, asked = threading.Event(), threading.Event()
    real = socket.getaddrinfo

    def slow_dns(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "git.slow-dns.example":
            return real(host, *args, **kwargs)
        asked.set()
        assert answer.wait(60)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]

    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)
    fill(page, slug="slow", url="https://git.slow-dns.example/p.git", sync=False)
    doc = Document()

    def add_twice() -> None:
        with set_curdoc(doc):
            click(page.add_button)
            click(page.add_button)  # a double click's second

    clicked = threading.Thread(target=add_twice, daemon=True)
    clicked.start()
    assert asked.wait(60)
    clicked.join(10)
    returned = not clicked.is_alive()
    answer.set()
    assert returned, "the click waited for the look-up"
    assert page.add_button.disabled
    run_ticks(doc)
    assert "Added marketplace 'slow'" in str(page.added.object) and page.form.errors == {}
    assert not page.add_button.disabled
    assert [m.slug for m in services.marketplaces.all()] == ["slow"]
    assert len(audit(services, "marketplace.add")) == 1


def _sync_in(doc: Document, page: MarketplacesPage, slug: str) -> None:
    with set_curdoc(doc):
        page.sync(slug)


def test_a_double_click_on_sync_all_syncs_once(
    services: Services, page: MarketplacesPage, tmp_path: Path
) -> None:
    """Sync returns at once (the sync is waited for in the background), so the second click
    of a double click queued the syncs again and audited them twice. Until the outcome
    shows, the button starts nothing more; then it syncs again."""
    upstream = UpstreamRepo(tmp_path / "upstream")
    sample_marketplace(upstream)
    services.marketplaces.add("good", str(upstream.path), added_by="test", sync=False)
    page.refresh()
    doc = Document()
    with set_curdoc(doc):
        click(page.sync_all_button)
        click(page.sync_all_button)  # the double click's second
    deadline = time.monotonic() + 60
    while not doc.session_callbacks and time.monotonic() < deadline:
        time.sleep(0.05)
    for callback in list(doc.session_callbacks):
        doc.remove_next_tick_callback(callback)  # type: ignore[arg-type]
        callback.callback()
    assert "'good' synced" in str(page.actions.message.object)
    assert len(audit(services, "marketplace.sync")) == 1
    click(page.sync_all_button)  # once the outcome shows: a new sync
    assert len(audit(services, "marketplace.sync")) == 2
