"""The admin app's settings page, driven in plain Python against real services: each cap
with its default and value in force, a change the query service enforces at once (and an
audit row naming the admin), bad values shown beside their fields with nothing saved, the
agent rails with "reset to built-in", and a revoked session that can change nothing."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from agnes_admin.context import PageContext
from agnes_admin.pages.settings import SettingsPage
from agnes_mcp.agent_rails import AGENT_RAILS
from agnes_mcp.auth.principal import Principal
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.query.budget import CAP_KEYS
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.server_config_admin import ConfigUpdate, update_config
from agnes_mcp.services import INSTRUCTIONS_KEY, Services
from agnes_mcp.store.users import User
from tests.conftest import add_user, register, token_for


@dataclass
class World:
    services: Services
    ctx: PageContext
    admin: User
    analyst: Principal


@pytest.fixture
def world(synced: Services) -> World:
    register(synced, id="orders", source_type="sample", source_options={"rows": 40})
    assert synced.sync.sync("orders").status == "ok"
    readers = synced.groups.add("Readers")
    synced.grants.add(readers.id, ResourceType.TABLE, "orders")
    analyst = add_user(synced, groups=(readers.id,))
    principal = synced.tokens.authenticate(token_for(synced, analyst), record_use=False)
    admin = add_user(synced, groups=(ADMIN_GROUP_ID,))
    session, _ = synced.web_sessions.sign_in(admin.id, "token")
    return World(synced, PageContext(synced, session.id), admin, principal)


def config_audit(services: Services) -> list[dict[str, Any]]:
    services.write_behind.flush()
    rows = services.audit_log.recent(limit=50)
    return [r.model_dump() for r in rows if r.action == "server_config.update"]


def test_every_cap_shows_its_default_and_value_in_force(world: World) -> None:
    world.services.server_config.set("scan_caps.max_result_rows", 123)
    page = SettingsPage(world.ctx)
    assert list(page.fields) == list(CAP_KEYS)
    rows = page.fields["max_result_rows"]
    assert rows.input.value == "123" and "Default: 100000" in rows.about.object
    assert "In force: 123 (overridden here)" in rows.about.object
    per_query = page.fields["per_query_bytes"]
    assert per_query.input.value == ""  # blank: the default is in force
    assert "Default: 5368709120 (5.0GiB)" in per_query.about.object
    assert "(the default)" in per_query.about.object


def test_a_new_row_cap_is_enforced_at_once_and_audited(world: World) -> None:
    services = world.services
    before = services.query.run(world.analyst, "SELECT * FROM orders")
    assert before.table.num_rows == 40 and not before.truncated
    page = SettingsPage(world.ctx)
    page.fields["max_result_rows"].input.value = "10"
    page.save_button.clicks += 1
    assert page.message.alert_type == "success", page.message.object
    cut = services.query.run(world.analyst, "SELECT * FROM orders")
    assert cut.table.num_rows == 10 and cut.truncated and cut.reason
    truncation = cut.truncation()
    assert truncation is not None
    (row,) = config_audit(services)
    assert row["user_id"] == world.admin.id
    assert row["params"]["scan_caps"] == {"max_result_rows": 10}
    assert "In force: 10 (overridden here)" in page.fields["max_result_rows"].about.object

    page.fields["max_result_rows"].input.value = ""  # back to the default
    page.save_caps()
    assert services.server_config.all() == {}
    assert services.query.run(world.analyst, "SELECT * FROM orders").table.num_rows == 40


def test_bad_values_are_shown_beside_their_fields_and_nothing_is_saved(world: World) -> None:
    services = world.services
    page = SettingsPage(world.ctx)
    page.fields["concurrent_queries"].input.value = "3"  # valid, but with invalid company
    page.fields["max_result_rows"].input.value = "0"
    page.fields["per_query_bytes"].input.value = "lots"
    page.fields["concurrent_remote_queries_per_user"].input.value = "1000"
    page.save_caps()
    errors = {k: f.error.object for k, f in page.fields.items() if f.error.visible}
    assert set(errors) == {
        "max_result_rows",
        "per_query_bytes",
        "concurrent_remote_queries_per_user",
    }
    assert "greater than or equal to 1" in errors["max_result_rows"]
    assert "less than or equal to 100" in errors["concurrent_remote_queries_per_user"]
    page.fields["max_result_rows"].input.value = "99999999999999999999999"  # past DuckDB's int64
    page.save_caps()
    assert "less than or equal to 1000000000000" in page.fields["max_result_rows"].error.object
    assert page.message.alert_type == "danger" and "nothing was saved" in page.message.object
    assert services.server_config.all() == {} and config_audit(services) == []
    assert services.query.budget.caps().concurrent_queries == 20
    page.fields["max_result_rows"].input.value = "5"
    page.fields["per_query_bytes"].input.value = "1GiB"
    page.fields["concurrent_remote_queries_per_user"].input.value = "2"
    page.save_caps()
    assert not any(f.error.visible for f in page.fields.values())
    caps = services.query.budget.caps()
    assert (caps.max_result_rows, caps.per_query_bytes, caps.concurrent_queries) == (
        5,
        1024**3,
        3,
    )
    assert len(config_audit(services)) == 1


def test_a_size_is_read_whole_with_its_digit_groups(world: World) -> None:
    """ "5,000,000" was saved as a 5-byte cap (pydantic's ByteSize reads only the start of
    a text: every remote query refused after), and "5;3" as 5. Digit groups are read as
    the number they write; anything else past the number and its unit is refused."""
    services = world.services
    page = SettingsPage(world.ctx)
    page.fields["per_query_bytes"].input.value = "5;3"
    page.fields["max_result_rows"].input.value = "1e5"
    page.save_caps()
    assert "'5;3' is not a size" in page.fields["per_query_bytes"].error.object
    assert page.fields["max_result_rows"].error.visible
    assert services.server_config.all() == {}
    page.fields["per_query_bytes"].input.value = "5,000,000"
    page.fields["per_user_daily_bytes"].input.value = "2_000_000 KB"
    page.fields["max_result_rows"].input.value = "100,000"
    page.save_caps()
    assert not any(f.error.visible for f in page.fields.values()), page.message.object
    caps = services.query.budget.caps()
    assert (caps.per_query_bytes, caps.per_user_daily_bytes, caps.max_result_rows) == (
        5_000_000,
        2_000_000_000,
        100_000,
    )


def test_agent_rails_save_reset_and_length_limit(world: World) -> None:
    services = world.services
    page = SettingsPage(world.ctx)
    assert page.rails.value == AGENT_RAILS and "built-in" in page.rails_state.object
    rules = "# House rules\nAlways cite the table."
    page.rails.value = rules
    page.save_rails_button.clicks += 1
    assert services.agent_instructions() == rules
    assert "Custom" in page.rails_state.object
    # the outcome shows under the rails' buttons, not a screen above them
    assert page.rails_message.visible and page.rails_message.object == "Agent rails saved."
    assert not page.message.visible
    page.rails.value = "x" * 100_001
    page.save_rails()
    assert page.rails_error.visible and "100000" in page.rails_error.object
    assert services.agent_instructions() == rules
    page.rails.value = rules + "\nTyped, not saved yet."
    page.reset_rails_button.clicks += 1  # asks first: the custom text would be gone
    assert page.confirm_reset.view.visible and "custom text is removed" in str(
        page.confirm_reset.text.object
    )
    page.confirm_reset.no.clicks += 1
    assert services.agent_instructions() == rules
    assert page.rails.value == rules + "\nTyped, not saved yet."
    page.reset_rails_button.clicks += 1
    page.confirm_reset.yes.clicks += 1
    assert services.agent_instructions() == AGENT_RAILS and page.rails.value == AGENT_RAILS
    assert page.rails_message.object == "Agent rails reset to the built-in text."
    rows = config_audit(services)
    assert [r["params"].get("agent_instructions_chars") for r in rows] == [
        0,
        len(rules),
    ]  # newest first
    assert {r["user_id"] for r in rows} == {world.admin.id}


def test_a_revoked_session_changes_nothing(world: World) -> None:
    services = world.services
    page = SettingsPage(world.ctx)
    services.web_sessions.sign_out(world.ctx.session_id)
    page.fields["max_result_rows"].input.value = "7"
    page.save_caps()
    page.rails.value = "new rails"
    page.save_rails()
    assert page.message.alert_type == "danger" and "signed out" in page.message.object
    assert page.rails_error.visible and "signed out" in page.rails_error.object
    assert services.server_config.all() == {} and config_audit(services) == []
    assert services.query.budget.caps().max_result_rows == 100_000


def test_a_demoted_admin_changes_nothing(world: World) -> None:
    services = world.services
    page = SettingsPage(world.ctx)
    add_user(services, groups=(ADMIN_GROUP_ID,))  # another admin stays
    services.groups.remove_member(ADMIN_GROUP_ID, world.admin.id)
    page.fields["max_result_rows"].input.value = "7"
    page.save_caps()
    assert page.message.alert_type == "danger"
    assert services.server_config.all() == {}


def test_two_admins_a_save_never_undoes_a_change_made_elsewhere(world: World) -> None:
    """A page opened before another admin (or the API) changed a setting does not put its
    old view back: the save is refused beside the field, the other's value stays, the text
    typed stays in the page, and saving again is a deliberate replace."""
    services = world.services
    other = services.tokens.authenticate(
        token_for(services, add_user(services, groups=(ADMIN_GROUP_ID,)), admin=True),
        record_use=False,
    )
    services.server_config.set(INSTRUCTIONS_KEY, "# Rails v1", updated_by="x")
    page = SettingsPage(world.ctx)
    update_config(
        services,
        other,
        ConfigUpdate.model_validate(
            {"agent_instructions": "# Rails v2\nA new rule.", "scan_caps": {"max_result_rows": 500}}
        ),
    )
    page.rails.value = "# Rails v1\nMy addition."
    page.save_rails()
    assert page.rails_error.visible and "changed elsewhere" in page.rails_error.object
    assert services.agent_instructions() == "# Rails v2\nA new rule."
    assert page.rails.value == "# Rails v1\nMy addition."
    page.fields["max_result_rows"].input.value = "7"
    page.fields["concurrent_queries"].input.value = "3"
    page.save_caps()
    assert page.message.alert_type == "danger"
    assert page.fields["max_result_rows"].error.visible
    assert "now 500" in page.fields["max_result_rows"].error.object
    caps = services.query.budget.caps()
    assert (caps.max_result_rows, caps.concurrent_queries) == (500, 20)  # nothing half-saved
    page.save_rails()  # again: the admin has been told, and means it
    page.save_caps()
    assert services.agent_instructions() == "# Rails v1\nMy addition."
    assert services.query.budget.caps().max_result_rows == 7


def test_a_double_click_on_save_saves_once_and_says_saved(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second click of a double click ran beside the first, found the first's change
    and said "changed elsewhere; nothing was saved" over a save that was made."""
    import agnes_admin.pages.settings as settings_page

    saving, go = threading.Event(), threading.Event()
    update_now = settings_page.update_config

    def slow_update(*args: Any, **kwargs: Any) -> Any:
        if not saving.is_set():  # the first click's save waits for the second click
            saving.set()
            go.wait()
        return update_now(*args, **kwargs)

    monkeypatch.setattr(settings_page, "update_config", slow_update)
    page = SettingsPage(world.ctx)
    page.fields["max_result_rows"].input.value = "4321"
    first = threading.Thread(target=lambda: setattr(page.save_button, "clicks", 1))
    first.start()
    saving.wait()
    page.save_button.clicks += 1  # while the first is saving: dropped
    go.set()
    first.join()
    assert page.message.object == "Saved: max_result_rows. In force now."
    assert not page.fields["max_result_rows"].error.visible
    assert world.services.query.budget.caps().max_result_rows == 4321


def test_an_untouched_setting_changed_elsewhere_is_kept(world: World) -> None:
    services = world.services
    page = SettingsPage(world.ctx)
    services.server_config.set("scan_caps.concurrent_queries", 4, updated_by="x")
    page.fields["max_result_rows"].input.value = "9"
    page.save_caps()
    assert page.message.alert_type == "success", page.message.object
    caps = services.query.budget.caps()
    assert (caps.max_result_rows, caps.concurrent_queries) == (9, 4)


def test_a_cap_changed_elsewhere_shows_what_is_in_force_now(world: World) -> None:
    """A save refused because another admin changed the cap said "(now 1073741824)" in raw
    bytes, while the line beside the box still said the old value was in force."""
    services = world.services
    page = SettingsPage(world.ctx)
    services.server_config.set("scan_caps.per_query_bytes", 1024**3, updated_by="x")
    page.fields["per_query_bytes"].input.value = "2GiB"
    page.save_caps()
    field = page.fields["per_query_bytes"]
    assert "(now 1073741824 (1.0GiB))" in field.error.object
    assert "In force: 1073741824 (1.0GiB) (overridden here)" in field.about.object
    assert field.input.value == "2GiB"  # the text typed stays
    page.save_caps()  # again: a deliberate replace
    assert services.query.budget.caps().per_query_bytes == 2 * 1024**3
