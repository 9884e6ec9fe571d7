"""``agnes mcp``: the workspace MCP server on stdio, for Claude Code.

stdout carries the protocol only; every log line goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from cli import exit_codes
from cli.workspace_session import open_backend


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    import anyio

    from agnes_mcp.mcp_server.server import build_single_user_mcp
    from agnes_mcp.mcp_server.stdio_transport import run_stdio

    with open_backend(args) as backend:
        server = build_single_user_mcp(backend)
        # What start-up built lives as long as the process: out of the cyclic collector's
        # sight, as `agnes serve` does (serve.freeze_startup_heap), so no full collection
        # walks it during a call.
        gc.freeze()
        anyio.run(run_stdio, server)
    return exit_codes.OK
