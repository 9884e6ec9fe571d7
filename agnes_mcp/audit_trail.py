"""Recording who did what: an in-memory append, flushed by the write-behind.

:func:`audit_extras` adds facts every row recorded inside it carries, from a layer that
does not record them itself: the MCP tool call a query ran for (its ``tool``, its
``arguments`` and the ``mcp_session``), so an agent's session can be read back as the
calls it made (:mod:`agnes_mcp.session_export`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from agnes_mcp.auth.principal import Principal
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.store.audit import AuditEntry
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.write_behind import WriteBehind

_extras: ContextVar[Mapping[str, Any] | None] = ContextVar("agnes_audit_extras", default=None)


@contextmanager
def audit_extras(extra: Mapping[str, Any]) -> Iterator[None]:
    """Every audit row recorded inside carries ``extra`` in its params (a row's own
    params win over it)."""
    token = _extras.set({**(_extras.get() or {}), **extra})
    try:
        yield
    finally:
        _extras.reset(token)


def current_extras() -> Mapping[str, Any]:
    """What :func:`audit_extras` adds here (empty outside it)."""
    return _extras.get() or {}


class AuditTrail:
    def __init__(self, write_behind: WriteBehind) -> None:
        self._write_behind = write_behind

    def record(
        self,
        principal: Principal | None,
        action: str,
        *,
        resource: str | None = None,
        result: str = "ok",
        params: dict[str, Any] | None = None,
        started: float | None = None,
        user_id: str | None = None,
        client: str | None = None,
    ) -> None:
        """Queue one audit row; ``started`` is a ``time.perf_counter()`` reading. Without a
        principal (OAuth endpoints), ``user_id`` and ``client`` say who it concerns."""
        duration = (time.perf_counter() - started) * 1000 if started is not None else None
        extra = _extras.get()
        if extra:
            params = {**extra, **(params or {})}
        self._write_behind.audit(
            AuditEntry(
                at=utcnow(),
                user_id=principal.user_id if principal else user_id,
                action=action,
                resource=resource,
                params=params or {},
                result=result,
                duration_ms=duration,
                client_ip=client_ip_var.get(),
                client=principal.client_name if principal else client,
            )
        )
