"""Usage for admins, from the audit log: bytes scanned per user per day, the heaviest and
slowest queries, refusals by code, and each user's scan budget left today.

One implementation for ``GET /api/admin/usage`` and the admin app's usage page. Pending
audit rows are flushed first, so a query that just ran is counted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import InvalidRequest
from agnes_mcp.store.audit import AuditQueries, AuditRow

if TYPE_CHECKING:
    from agnes_mcp.services import Services


class UserDayBytes(BaseModel):
    day: date
    user_id: str | None
    email: str | None
    bytes_scanned: int
    queries: int


class TopQuery(BaseModel):
    id: int = Field(description="The audit row.")
    at: datetime
    user_id: str | None
    email: str | None
    action: str
    result: str
    bytes_scanned: int | None
    duration_ms: float | None
    sql: str


class RefusalCount(BaseModel):
    code: str
    action: str
    count: int


class BudgetLeft(BaseModel):
    user_id: str
    email: str
    spent_today: int
    daily_cap: int
    left_today: int


class UsageReport(BaseModel):
    since: datetime = Field(description="Start of the window (UTC midnight).")
    days: int
    bytes_per_user_day: list[UserDayBytes]
    top_by_bytes: list[TopQuery]
    top_by_duration: list[TopQuery]
    refusals: list[RefusalCount] = Field(description="Rows whose result is not 'ok'.")
    budgets: list[BudgetLeft] = Field(description="Active users, least budget left first.")


MAX_DAYS = 366


def usage_report(
    services: Services, admin: Principal, *, days: int = 14, top: int = 20
) -> UsageReport:
    """Usage over the last ``days`` UTC days (today included, 1 to :data:`MAX_DAYS`)."""
    services.access.require_admin(admin)
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(
            f"The window must be 1-{MAX_DAYS} days, not {days}.",
            details={"fields": [{"field": "days", "problem": f"1-{MAX_DAYS}"}]},
        )
    services.write_behind.flush()
    today = datetime.now(UTC).date()
    midnight = datetime.combine(today, time(), tzinfo=UTC)
    since = midnight - timedelta(days=days - 1)
    queries = AuditQueries(services.store)
    users = services.users.all()
    emails = {u.id: u.email for u in users}

    def top_query(row: AuditRow) -> TopQuery:
        return TopQuery(
            id=row.id,
            at=row.at,
            user_id=row.user_id,
            email=emails.get(row.user_id or ""),
            action=row.action,
            result=row.result,
            bytes_scanned=_int(row.params.get("bytes_scanned")),
            duration_ms=row.duration_ms,
            sql=str(row.params.get("sql") or ""),
        )

    cap = services.query.budget.caps().per_user_daily_bytes
    spent = queries.bytes_per_user(midnight)
    budgets = sorted(
        (
            BudgetLeft(
                user_id=u.id,
                email=u.email,
                spent_today=spent.get(u.id, 0),
                daily_cap=cap,
                left_today=max(0, cap - spent.get(u.id, 0)),
            )
            for u in users
            if u.active
        ),
        key=lambda b: (b.left_today, b.email),
    )
    return UsageReport(
        since=since,
        days=days,
        bytes_per_user_day=[
            UserDayBytes(
                day=d.day,
                user_id=d.user_id,
                email=emails.get(d.user_id or ""),
                bytes_scanned=d.bytes_scanned,
                queries=d.queries,
            )
            for d in queries.bytes_per_user_day(since)
        ],
        top_by_bytes=[top_query(r) for r in queries.top_queries(since, by="bytes", limit=top)],
        top_by_duration=[
            top_query(r) for r in queries.top_queries(since, by="duration", limit=top)
        ],
        refusals=[
            RefusalCount(code=r.result, action=r.action, count=r.count)
            for r in queries.failures_by_code(since)
        ],
        budgets=budgets,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
