"""Every admin page writes a moment in UTC and says so (the Overview and /me did; the
Tokens, Access, Audit and Marketplaces pages wrote bare times an admin read as local)."""

from __future__ import annotations

import datetime as dt

from agnes_admin.context import PageContext
from agnes_admin.pages.audit import AuditPage
from agnes_admin.pages.tokens import TokensPage
from agnes_admin.times import shown_time
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.services import Services
from tests.conftest import add_user, token_for


def test_a_moment_is_written_in_utc_saying_so() -> None:
    east = dt.timezone(dt.timedelta(hours=2))
    assert shown_time(dt.datetime(2026, 12, 1, 11, 30, 15, tzinfo=east)) == "2026-12-01 09:30 UTC"
    assert shown_time(dt.datetime(2026, 12, 1, 9, 30, 15), seconds=True) == (
        "2026-12-01 09:30:15 UTC"
    )
    assert shown_time(None) == "" and shown_time(None, never="never") == "never"


def test_the_pages_name_the_zone_of_their_times(services: Services) -> None:
    admin = add_user(services, (ADMIN_GROUP_ID,), email="boss@example.com")
    token_for(services, admin)
    session, _ = services.web_sessions.sign_in(admin.id, "token")
    ctx = PageContext(services, session.id)
    tokens = TokensPage(ctx)
    tokens.refresh()
    assert all(str(v).endswith(" UTC") for v in tokens.table.value["created"])
    assert set(tokens.table.value["expires"]) == {"never"}
    services.audit.record(None, "test.action")
    services.write_behind.flush()
    audit = AuditPage(ctx)
    audit.apply()
    assert len(audit.table.value) and all(v.endswith(" UTC") for v in audit.table.value["at"])
