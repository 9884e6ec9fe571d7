"""Recording who did what: an in-memory append, flushed by the write-behind."""

from __future__ import annotations

import time
from typing import Any

from agnes_mcp.auth.principal import Principal
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.store.audit import AuditEntry
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.write_behind import WriteBehind


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
