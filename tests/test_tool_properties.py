"""Arbitrary text through the MCP ``query`` and ``query_remote`` tools (not only the
policy): every call ends in a result or a typed refusal — never an untyped error.

A few hundred examples run in CI; ``AGNES_PROPERTY_EXAMPLES=10000`` makes it a
nightly-sized run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from fastmcp import Client, FastMCP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server import build_single_user_mcp
from agnes_mcp.mcp_server.server_backend import ServerBackend
from tests.conftest import DemoServer

EXAMPLES = int(os.environ.get("AGNES_PROPERTY_EXAMPLES", "150"))

WORDS = [
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "WITH",
    "AS",
    "UNION ALL",
    "JOIN",
    "ON",
    "USING",
    "NATURAL",
    "(",
    ")",
    ",",
    ";",
    "*",
    "=",
    "<",
    "'",
    '"',
    "--",
    "/*",
    "orders",
    "customers",
    "web_sessions",
    "support_tickets",
    "warehouse.main.web_sessions",
    "order_id",
    "device",
    "event_date",
    "total_amount",
    "count(*)",
    "sum(total_amount)",
    "DATE 'infinity'",
    "TIMESTAMP '-infinity'",
    "'nan'::DOUBLE",
    "[1, [2]]",
    "{'a': 1}",
    "COLUMNS('.*')",
    "#1",
    "w",
    "1",
    "NULL",
    "read_parquet('x')",
    "pg_get_viewdef(1)",
    "DELETE",
    "ATTACH",
    "COPY",
    "PRAGMA",
    "SET",
    "INSTALL",
    "range(3)",
    "repeat('x', 3)",
    "current_date",
    "INTERVAL 7 DAY",
    "CAST(1 AS DATE)",
    "$1",
    "?",
    "\\",
    "\x00",
    "é",
]


def sqlish() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=200),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=24).map(" ".join),
        st.builds(
            lambda cols, table, cond: f"SELECT {cols} FROM {table} WHERE {cond}",
            st.sampled_from(["*", "count(*)", "device", "w", "max(w)", "order_id, 1"]),
            st.sampled_from(["orders", "web_sessions w", "customers c", "support_tickets"]),
            st.text(max_size=40),
        ),
    )


@pytest.fixture(scope="module")
def mcp(demo_server: DemoServer) -> Iterator[FastMCP]:
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    yield build_single_user_mcp(ServerBackend(services, analyst, ResultStore()))


async def _call(mcp: FastMCP, tool: str, sql: str) -> tuple[bool, dict | None, str]:
    async with Client(mcp) as client:
        result = await client.call_tool(tool, {"sql": sql}, raise_on_error=False)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return result.is_error, result.structured_content, text


@pytest.mark.parametrize("tool", ["query", "query_remote"])
def test_any_text_gives_a_result_or_a_typed_refusal(mcp: FastMCP, tool: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(sql=sqlish())
    def check(sql: str) -> None:
        is_error, structured, text = asyncio.run(_call(mcp, tool, sql))
        if is_error:
            assert structured is not None and "error" in structured, text
            error = structured["error"]
            assert error["code"] and error["message"], error
            assert error["code"] != "internal_error", error

    check()
