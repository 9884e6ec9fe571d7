"""The caller's IP for the request being served: set by the HTTP layer, read by whoever
records it (token last-use, audit rows) without being handed the request."""

from __future__ import annotations

from contextvars import ContextVar

client_ip_var: ContextVar[str | None] = ContextVar("agnes_client_ip", default=None)
