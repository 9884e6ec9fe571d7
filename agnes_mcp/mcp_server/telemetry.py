"""FastMCP's own OpenTelemetry spans: off unless the operator asks for them."""

from __future__ import annotations

import os

import fastmcp

TELEMETRY_MODE_ENV = "FASTMCP_TELEMETRY_MODE"


def spans_off_unless_asked() -> None:
    """Agnes installs the OpenTelemetry API (a FastMCP dependency) but no SDK, so the
    spans FastMCP opens around every MCP request record nothing, yet building their
    attributes and attaching their contexts cost ~0.06 ms a call (2% of a small in-process
    ``query``). Off, unless ``FASTMCP_TELEMETRY_MODE`` is set: an operator who installs an
    OpenTelemetry SDK and exporter sets it to ``native`` (docs/configuration.md)."""
    if os.environ.get(TELEMETRY_MODE_ENV) is None:
        fastmcp.settings.telemetry_mode = "off"
