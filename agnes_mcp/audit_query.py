"""Reading the audit log for admins: filter by user, action, outcome and time; paged in SQL.

One implementation for ``GET /api/admin/audit`` and the admin app's audit page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import InvalidRequest
from agnes_mcp.store.audit import AuditFilter, AuditQueries, AuditRow

if TYPE_CHECKING:
    from agnes_mcp.services import Services

MAX_PAGE_SIZE = 500


class AuditEntryOut(AuditRow):
    email: str | None = Field(default=None, description="The user's e-mail, when known.")


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    total: int = Field(description="Rows matching the filters, over all pages.")
    page: int = Field(description="This page, from 1.")
    page_size: int
    pages: int = Field(description="Pages in all (at least 1).")


class AuditFacets(BaseModel):
    actions: list[str]
    results: list[str]


class AuditQueryInvalid(InvalidRequest):
    code = "audit_query_invalid"


def audit_filter(
    services: Services,
    *,
    user: str | None = None,
    user_contains: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilter:
    """The filter for these values; ``user`` is an id or an e-mail (unknown: an error);
    ``user_contains`` a part of users' e-mail, name or id (none matching: an error)."""
    user_id = None
    if user is not None and user.strip():
        user_id = services.users.find(user.strip()).id
    user_ids = _users_matching(services, user_contains) if user_contains else None
    start, end = _utc(since, "since"), _utc(until, "until")
    if start is not None and end is not None and end <= start:
        raise AuditQueryInvalid(
            "The end of the time range must come after its start.",
            details={"field": "until"},
        )
    return AuditFilter(
        user_id=user_id,
        user_ids=user_ids,
        action=(action or "").strip() or None,
        outcome=(outcome or "").strip() or None,
        since=start,
        until=end,
    )


def _users_matching(services: Services, text: str) -> tuple[str, ...] | None:
    """The ids of the users whose e-mail, name or id contains ``text`` (any case); only
    the one whose e-mail or id is ``text`` when there is one. None for a blank ``text``."""
    needle = text.strip().lower()
    if not needle:
        return None
    users = services.users.all()
    exact = [u.id for u in users if needle in (u.email.lower(), u.id.lower())]
    found = exact or [u.id for u in users if needle in f"{u.email}\n{u.name or ''}\n{u.id}".lower()]
    if not found:
        raise AuditQueryInvalid(
            f"No user's e-mail, name or id contains '{text.strip()}'.",
            details={"field": "user"},
        )
    return tuple(found)


def _utc(value: datetime | None, name: str) -> datetime | None:
    """``value`` in UTC (a value without a zone is taken as UTC)."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise AuditQueryInvalid(f"{name} is out of range.", details={"field": name}) from None


def audit_page(
    services: Services,
    admin: Principal,
    where: AuditFilter,
    *,
    page: int = 1,
    page_size: int = 50,
) -> AuditPage:
    """One page (newest first) of the rows matching ``where``."""
    services.access.require_admin(admin)
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise AuditQueryInvalid(
            f"page must be 1 or more and page_size 1 to {MAX_PAGE_SIZE}.",
            details={"page": page, "page_size": page_size},
        )
    rows, total = AuditQueries(services.store).page(
        where, offset=(page - 1) * page_size, limit=page_size
    )
    emails = _emails(services, {r.user_id for r in rows if r.user_id})
    entries = [
        AuditEntryOut(**row.model_dump(), email=emails.get(row.user_id or "")) for row in rows
    ]
    return AuditPage(
        entries=entries,
        total=total,
        page=page,
        page_size=page_size,
        pages=max(1, -(-total // page_size)),
    )


def audit_entry(services: Services, admin: Principal, entry_id: int) -> AuditRow | None:
    services.access.require_admin(admin)
    return AuditQueries(services.store).get(entry_id)


def audit_facets(services: Services, admin: Principal) -> AuditFacets:
    """The actions and results found in the log, for the filter choices."""
    services.access.require_admin(admin)
    queries = AuditQueries(services.store)
    return AuditFacets(actions=queries.distinct("action"), results=queries.distinct("result"))


def _emails(services: Services, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    return {u.id: u.email for u in services.users.all() if u.id in user_ids}
