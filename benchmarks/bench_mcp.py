"""An MCP tool call over streamable HTTP (official client) against the health check."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from benchmarks.harness import Result, agnes_server, median, time_calls


async def _mcp_calls(url: str, token: str, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        for _ in range(20):
            await session.call_tool("whoami", {})
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            result = await session.call_tool("whoami", {})
            samples.append(time.perf_counter() - started)
            assert not result.is_error
        return samples


def run(quick: bool = False) -> list[Result]:
    n = 100 if quick else 400
    with tempfile.TemporaryDirectory() as tmp, agnes_server(Path(tmp) / "data") as server:
        with httpx.Client(base_url=server.base_url) as anonymous:
            health = time_calls(lambda: anonymous.get("/healthz"), n)
        calls = asyncio.run(_mcp_calls(server.base_url, server.admin_token, n))
    return [
        Result(
            "MCP tools/call whoami over streamable HTTP (p50)",
            median(calls) * 1000,
            "ms",
            "GET /healthz (p50)",
            median(health) * 1000,
            "report (data tools come with the MCP issue)",
        )
    ]
