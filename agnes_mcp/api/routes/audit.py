"""Admin: the audit log (filtered, paged) and usage drawn from it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.audit_query import MAX_PAGE_SIZE, AuditPage, audit_filter, audit_page
from agnes_mcp.usage_report import MAX_DAYS, UsageReport, usage_report

router = APIRouter(prefix="/api/admin", tags=["admin: audit and usage"])


@router.get("/audit", summary="Audit log rows, newest first, filtered and paged")
def list_audit(
    services: ServicesDep,
    admin: AdminDep,
    user: str | None = Query(default=None, max_length=320, description="User id or e-mail."),
    action: str | None = Query(default=None, max_length=200, description="e.g. query"),
    outcome: str | None = Query(
        default=None,
        max_length=200,
        description="'ok', 'failed' (anything else), or one result code.",
    ),
    since: Annotated[datetime | None, Query(description="From (included).")] = None,
    until: Annotated[datetime | None, Query(description="Until (excluded).")] = None,
    page: int = Query(default=1, ge=1, le=1_000_000),
    page_size: int = Query(default=50, ge=1, le=MAX_PAGE_SIZE),
) -> AuditPage:
    services.access.require_admin(admin)
    where = audit_filter(
        services, user=user, action=action, outcome=outcome, since=since, until=until
    )
    return audit_page(services, admin, where, page=page, page_size=page_size)


@router.get("/usage", summary="Bytes scanned per user per day, top queries, refusals, budgets")
def show_usage(
    services: ServicesDep,
    admin: AdminDep,
    days: int = Query(default=14, ge=1, le=MAX_DAYS, description="UTC days, today included."),
    top: int = Query(default=20, ge=1, le=500, description="Rows in each top list."),
) -> UsageReport:
    return usage_report(services, admin, days=days, top=top)
