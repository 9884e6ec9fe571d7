"""FastMCP's OpenTelemetry spans are off unless the operator asks for them
(``FASTMCP_TELEMETRY_MODE``, docs/configuration.md): off, a request's trace context is
not taken up; asked for, it is."""

from __future__ import annotations

import fastmcp
import pytest
from fastmcp import Client, FastMCP
from opentelemetry import trace

from agnes_mcp.mcp_server.server import build_mcp
from agnes_mcp.mcp_server.telemetry import TELEMETRY_MODE_ENV
from agnes_mcp.services import Services

pytestmark = pytest.mark.anyio
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _with_trace_probe(mcp: FastMCP) -> FastMCP:
    @mcp.tool()
    def current_trace_id() -> str:
        return format(trace.get_current_span().get_span_context().trace_id, "032x")

    return mcp


async def _trace_id_seen(mcp: FastMCP) -> str:
    async with Client(mcp) as client:
        result = await client.call_tool("current_trace_id", {}, meta={"traceparent": TRACEPARENT})
    return str(result.data)


async def test_spans_are_off_by_default(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TELEMETRY_MODE_ENV, raising=False)
    monkeypatch.setattr(fastmcp.settings, "telemetry_mode", "native")
    mcp = _with_trace_probe(build_mcp(services))
    assert await _trace_id_seen(mcp) == "0" * 32


async def test_the_operator_turns_them_on(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TELEMETRY_MODE_ENV, "native")
    monkeypatch.setattr(fastmcp.settings, "telemetry_mode", "native")  # as read at import
    mcp = _with_trace_probe(build_mcp(services))
    assert fastmcp.settings.telemetry_mode == "native"
    assert await _trace_id_seen(mcp) == TRACE_ID
