"""Enter in a one-line field of an admin page's form does what its button does, as in a
web form: a page of Panel widgets is no HTML form, and Enter did nothing, so an admin
working from the keyboard could type a token's name, a user's e-mail or an audit filter
and never act on it. Driven in plain Python against real services (``enter_pressed`` is
the event the browser sends on Enter)."""

from __future__ import annotations

from typing import Any

from agnes_admin.context import PageContext
from agnes_admin.pages.access import AccessPage
from agnes_admin.pages.audit import AuditPage
from agnes_admin.pages.marketplaces import MarketplacesPage
from agnes_admin.pages.settings import SettingsPage
from agnes_admin.pages.tokens import TokensPage
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.server_config_admin import current_config
from agnes_mcp.services import Services
from tests.conftest import add_user


def enter(field: Any) -> None:
    """The admin presses Enter in ``field``."""
    field.param.trigger("enter_pressed")


def admin_context(services: Services) -> PageContext:
    admin = add_user(services, (ADMIN_GROUP_ID,), email="boss@example.com")
    session, _ = services.web_sessions.sign_in(admin.id, "token")
    return PageContext(services, session.id)


def test_enter_creates_a_token_adds_a_user_and_a_group(services: Services) -> None:
    ctx = admin_context(services)
    tokens = TokensPage(ctx)
    tokens.name.value = "from the keyboard"
    enter(tokens.name)
    assert tokens.created.visible and str(tokens.raw_token.value).startswith("agnes_")
    assert "Created token 'from the keyboard'" in tokens.create_form.message.object

    access = AccessPage(ctx)
    access.user_email.value = "keys@example.com"
    enter(access.user_email)
    assert "keys@example.com" in {u.email for u in services.users.all()}
    access.group_name.value = "Keyboarders"
    enter(access.group_description)
    assert "Keyboarders" in {g.name for g in services.groups.all()}


def test_enter_applies_the_audit_filter_and_saves_limits(services: Services) -> None:
    ctx = admin_context(services)
    audit = AuditPage(ctx)
    audit.user.value = "boss@example.com"
    enter(audit.user)
    assert audit._filters_in_force.user == "boss@example.com"  # applied

    settings = SettingsPage(ctx)
    settings.fields["max_result_rows"].input.value = "1234"
    enter(settings.fields["max_result_rows"].input)
    assert current_config(services).overrides.get("max_result_rows") == 1234
    assert "Saved: max_result_rows" in settings.message.object


def test_enter_in_the_marketplace_form_adds_or_says_what_is_missing(services: Services) -> None:
    page = MarketplacesPage(admin_context(services))
    page.form.fields["slug"].widget.value = "tools"
    enter(page.form.fields["slug"].widget)
    assert "url" in page.form.errors  # the form was submitted: its missing field is marked
