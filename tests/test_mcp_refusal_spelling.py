"""A refusal that says what the caller gave says it as JSON spells it, on both MCP
transports: the caller sent JSON (``true``, ``null``, ``"a,b"``), and was told of
``True``, ``None``, ``'a,b'`` and ``{'table'}``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DemoServer
from tests.mcp_raw import initialize
from tests.test_mcp_unreadable_messages import _exchange, _local_mcp, _session

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _call(tool: str, arguments: Any) -> dict[str, Any]:
    return {"method": "tools/call", "params": {"name": tool, "arguments": arguments}}


# (request, what its refusal says was given); the tools refuse these before any data is read
CASES: list[tuple[dict[str, Any], str]] = [
    (_call("query", {"sql": "SELECT 1", "limit": True}), "(given true)"),
    (_call("describe", {"table": None}), "(given null)"),
    (_call("snapshot_estimate", {"table": "t", "select": "a,b"}), '(given "a,b")'),
    (_call("query", {"sql": {"a": [1, None]}}), '(given {"a": [1, null]})'),
    (_call("query", "SELECT 1"), '(given "SELECT 1")'),
    ({"method": "tools/list", "params": {"cursor": False}}, "cursor: the list"),  # data: given
    ({"method": "prompts/get", "params": {"name": "explore_table"}}, "arguments.table: Missing"),
    ({"method": "prompts/get", "params": {"name": "nosuch"}}, 'Unknown prompt: "nosuch"'),
    ({"method": "resources/read", "params": {"uri": "agnes://x"}}, 'not found: "agnes://x"'),
    # the values allowed, listed: as JSON too
    (_call("catalog", {"query_mode": "x"}), '"local", "materialized" or "remote" (given "x")'),
    ({"method": "logging/setLevel", "params": {"level": "loud"}}, '"alert", "critical"'),
    # a value no member of a union takes: one problem at its place, not one per member
    # under pydantic's type tags ("filters.channel.constrained-str", "filters.channel.int")
    (
        _call("metric_query", {"id": "a/b", "filters": {"channel": {"a": 1}}}),
        "metric_query: filters.channel: Input should be a valid string, a valid integer, "
        'a valid number, a valid boolean or a valid list (given {"a": 1}).',
    ),
]
PYTHON_SPELLINGS = ("True", "False", "None", "'", "{'")


def _message(answer: dict[str, Any]) -> str:
    if "error" in answer:
        return str(answer["error"]["message"])
    return str(answer["result"]["structuredContent"]["error"]["message"])


def _check(answers: list[dict[str, Any]]) -> None:
    for (request, said), answer in zip(CASES, answers, strict=True):
        message = _message(answer)
        assert said in message, (request, message)
        assert not any(python in message for python in PYTHON_SPELLINGS), (request, message)
        problems = answer.get("error", {}).get("data", {}).get("problems", [])
        for problem in problems:
            if "given" in problem:
                json.loads(problem["given"])  # JSON, not a Python repr


async def test_refusals_spell_given_values_as_json_on_stdio(tmp_path: Path) -> None:
    async with _local_mcp(tmp_path) as (process, lines):
        assert "result" in await _exchange(process, lines, json.dumps(initialize("spelling")))
        answers = [
            await _exchange(process, lines, json.dumps({"jsonrpc": "2.0", "id": n, **request}))
            for n, (request, _) in enumerate(CASES, start=2)
        ]
        _check(answers)
        assert process.stdin is not None
        await process.stdin.aclose()
        assert await process.wait() == 0


def test_refusals_spell_given_values_as_json_over_http(demo_server: DemoServer) -> None:
    url = f"{demo_server.live.base_url}/mcp/"
    session = {
        **_session(url, demo_server.analyst_token, "2025-06-18"),
        "mcp-protocol-version": "2025-06-18",
    }
    answers = [
        httpx.post(
            url, json={"jsonrpc": "2.0", "id": n, **request}, headers=session, timeout=30
        ).json()
        for n, (request, _) in enumerate(CASES, start=2)
    ]
    _check(answers)
    httpx.delete(url, headers=session, timeout=30)
