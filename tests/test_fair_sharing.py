"""One analyst cannot starve everyone: queries take places (per user, server-wide) or are
refused at once with ``too_many_queries``; and they run on threads of their own, so
health, sign-in, catalog and admin calls answer however many slow queries are running.

Slow queries are held by a hook on the sandbox that waits on an Event this test sets, not
by a query that happens to be slow: the test decides when they finish.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from agnes_mcp.query.concurrency import (
    LANE_THREADS,
    MAX_CONCURRENT_QUERIES,
    QUERY_NICENESS,
    QuerySlots,
    TooManyQueries,
    in_query_lane,
)
from agnes_mcp.query.workspace_query import WorkspaceLimits, WorkspaceQuery
from agnes_mcp.rails.sandbox import Limits, RunResult, Sandbox
from agnes_mcp.services import Services
from agnes_mcp.settings import ScanCaps
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import LiveServer, add_user, running_server, token_for

HOLD = "SELECT 'agnes_hold' AS held"
GENEROUS = 60.0  # seconds; a bound against hanging, never a timing assertion


class Holder:
    """Holds every query whose SQL says ``agnes_hold`` inside the sandbox until released."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.gate = threading.Event()

    def wait_for(self, n: int) -> None:
        for i in range(n):
            assert self.entered.acquire(timeout=GENEROUS), f"only {i} of {n} queries started"


@pytest.fixture
def holder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Holder]:
    hold = Holder()
    original = Sandbox.run

    def run(
        self: Sandbox,
        sql: str,
        limits: Limits,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        fixed_width: bool = False,
    ) -> RunResult:
        if "agnes_hold" in sql:
            hold.entered.release()
            hold.gate.wait(GENEROUS)
        return original(self, sql, limits, prepare, fixed_width)

    monkeypatch.setattr(Sandbox, "run", run)
    try:
        yield hold
    finally:
        hold.gate.set()  # never leave a thread waiting


# --- slots --------------------------------------------------------------------------------


def test_slots_refuse_over_each_limit_and_free_on_exit() -> None:
    slots = QuerySlots()
    limits = {"per_user": 2, "total": 3, "timeout_seconds": 30.0}
    with slots.hold("a", **limits), slots.hold("a", **limits):
        with pytest.raises(TooManyQueries) as mine, slots.hold("a", **limits):
            pass
        assert mine.value.status == 429 and mine.value.code == "too_many_queries"
        assert mine.value.details["scope"] == "user" and mine.value.details["limit"] == 2
        assert mine.value.details["limit_name"] == "scan_caps.concurrent_queries_per_user"
        assert 1 <= mine.value.details["retry_after_seconds"] <= 30
        with slots.hold("b", **limits):
            with pytest.raises(TooManyQueries) as everyone, slots.hold("c", **limits):
                pass
            assert everyone.value.details["scope"] == "server"
            assert everyone.value.details["limit_name"] == "scan_caps.concurrent_queries"
    assert slots.running() == 0
    with pytest.raises(RuntimeError), slots.hold("a", **limits):
        raise RuntimeError("a failing query still gives its place back")
    assert slots.running() == 0 and slots.running("a") == 0


def test_the_refusal_counts_with_its_noun_agreeing() -> None:
    """A limit of 1 said "The server already runs 1 queries at once"."""
    slots = QuerySlots()
    with slots.hold("a", per_user=1, total=1, timeout_seconds=30.0):
        with (
            pytest.raises(TooManyQueries) as mine,
            slots.hold("a", per_user=1, total=1, timeout_seconds=30.0),
        ):
            pass
        with (
            pytest.raises(TooManyQueries) as everyone,
            slots.hold("b", per_user=1, total=1, timeout_seconds=30.0),
        ):
            pass
    assert mine.value.message.startswith("You already run 1 query at once; the limit is 1")
    assert everyone.value.message.startswith("The server already runs 1 query at once;")
    with (
        slots.hold("a", per_user=2, total=2, timeout_seconds=30.0),
        slots.hold("a", per_user=2, total=2, timeout_seconds=30.0),
        pytest.raises(TooManyQueries) as several,
        slots.hold("a", per_user=2, total=2, timeout_seconds=30.0),
    ):
        pass
    assert several.value.message.startswith("You already run 2 queries at once;")


def test_the_lane_is_wider_than_any_limit_an_admin_may_set() -> None:
    """A query never waits for a lane thread: the slots refuse before the lane fills."""
    for name in ("concurrent_queries", "concurrent_queries_per_user"):
        limits = [m.le for m in ScanCaps.model_fields[name].metadata if hasattr(m, "le")]
        assert limits == [MAX_CONCURRENT_QUERIES]
    assert LANE_THREADS > MAX_CONCURRENT_QUERIES


CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


def test_query_work_runs_on_threads_of_its_own_at_a_lower_priority() -> None:
    """Not anyio's default pool (which sync routes, dependencies and tools share), with
    the caller's context, and below the event loop's CPU priority (Linux)."""

    def where() -> tuple[str, int, str]:
        thread = threading.current_thread()
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return thread.name, nice, CALLER.get()

    async def call() -> tuple[str, int, str]:
        CALLER.set("analyst@example.com")
        return await in_query_lane(where)

    name, nice, caller = asyncio.run(call())
    assert name.startswith("agnes-query") and caller == "analyst@example.com"
    if sys.platform.startswith("linux"):
        assert nice >= QUERY_NICENESS


def _client(live: LiveServer, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=live.base_url, headers=headers, timeout=GENEROUS * 2)


def _post(client: httpx.Client, sql: str) -> httpx.Response:
    return client.post("/api/query", json={"sql": sql, "mode": "local"})


@contextmanager
def _server(tmp_path: Path, **caps: int) -> Iterator[LiveServer]:
    with running_server(tmp_path / "data", scan_caps=caps) as live:
        yield live


def test_too_many_queries_is_a_429_with_retry_after(tmp_path: Path, holder: Holder) -> None:
    with _server(tmp_path, concurrent_queries_per_user=2, concurrent_queries=3) as live:
        tokens = [token_for(live.services, add_user(live.services)) for _ in range(3)]
        clients = [live.client(t) for t in tokens]
        with ThreadPoolExecutor(max_workers=4) as pool:
            held = [pool.submit(_post, clients[0], HOLD) for _ in range(2)]
            holder.wait_for(2)
            own = _post(clients[0], "SELECT 1")
            assert own.status_code == 429, own.text
            error = own.json()["error"]
            assert error["code"] == "too_many_queries" and error["details"]["scope"] == "user"
            assert int(own.headers["Retry-After"]) == error["details"]["retry_after_seconds"] >= 1
            assert _post(clients[1], "SELECT 1").status_code == 200  # others still run

            held.append(pool.submit(_post, clients[1], HOLD))
            holder.wait_for(1)
            full = _post(clients[2], "SELECT 1")
            assert full.status_code == 429 and "Retry-After" in full.headers
            assert full.json()["error"]["details"]["scope"] == "server"
            assert not any(f.done() for f in held)
            holder.gate.set()
            assert [f.result(GENEROUS).status_code for f in held] == [200, 200, 200]
        assert _post(clients[2], "SELECT 1").status_code == 200  # the places came back
        for client in clients:
            client.close()


def test_caps_change_at_run_time(tmp_path: Path, holder: Holder) -> None:
    with _server(tmp_path) as live:
        admin = live.client(live.admin_token)
        shown = admin.get("/api/admin/server-config").json()["scan_caps"]
        assert shown["concurrent_queries_per_user"] == 5 and shown["concurrent_queries"] == 20
        changed = admin.put(
            "/api/admin/server-config", json={"scan_caps": {"concurrent_queries_per_user": 1}}
        )
        assert changed.status_code == 200
        assert changed.json()["overrides"]["concurrent_queries_per_user"] == 1
        too_many = admin.put(
            "/api/admin/server-config",
            json={"scan_caps": {"concurrent_queries": MAX_CONCURRENT_QUERIES + 1}},
        )
        assert too_many.status_code == 422
        user = live.client(token_for(live.services, add_user(live.services)))
        with ThreadPoolExecutor(max_workers=1) as pool:
            held = pool.submit(_post, user, HOLD)
            holder.wait_for(1)
            assert _post(user, "SELECT 1").status_code == 429
            holder.gate.set()
            assert held.result(GENEROUS).status_code == 200
        admin.close()
        user.close()


def test_a_workspace_refuses_rather_than_queues(tmp_path: Path, holder: Holder) -> None:
    local = WorkspaceQuery(WorkspacePaths(tmp_path / "ws"), WorkspaceLimits(concurrent_queries=1))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            held = pool.submit(local.run, HOLD, None)
            holder.wait_for(1)
            with pytest.raises(TooManyQueries) as refused:
                local.run("SELECT 1", None)
            assert refused.value.details["limit"] == 1
            holder.gate.set()
            assert held.result(GENEROUS).table.num_rows == 1
        assert local.run("SELECT 1", None).table.num_rows == 1
    finally:
        local.close()


# --- health, auth, catalog and admin calls never wait behind queries ----------------------

USERS = 10
REST_PER_USER = 4
MCP_USERS = 10  # each also holds one query through the MCP query tool
HELD = USERS * REST_PER_USER + MCP_USERS  # 50: more than anyio's default pool of 40


async def _mcp_calls(url: str, tokens: list[str], sql: str) -> list[Any]:
    async def one(token: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=GENEROUS * 2) as http,
            streamable_http_client(url, http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            return await session.call_tool("query", {"sql": sql})

    return await asyncio.gather(*(one(t) for t in tokens))


def test_health_auth_catalog_and_admin_answer_while_50_queries_are_held(
    tmp_path: Path, holder: Holder
) -> None:
    with _server(tmp_path, concurrent_queries=HELD + 10, concurrent_queries_per_user=5) as live:
        services = live.services
        tokens = [token_for(services, add_user(services)) for _ in range(USERS)]
        clients = [_client(live, t) for t in tokens]
        with ThreadPoolExecutor(max_workers=HELD + 1) as pool:
            held: list[Future[Any]] = [
                pool.submit(_post, client, HOLD) for client in clients for _ in range(REST_PER_USER)
            ]
            held.append(pool.submit(asyncio.run, _mcp_calls(f"{live.base_url}/mcp", tokens, HOLD)))
            holder.wait_for(HELD)  # 50 queries are inside the sandbox, holding their threads

            with _client(live) as anonymous:
                health = anonymous.get("/healthz")
            analyst = _client(live, tokens[0])
            admin = _client(live, live.admin_token)
            whoami = analyst.get("/api/whoami")
            catalog = analyst.get("/api/catalog")
            users = admin.get("/api/admin/users")
            config = admin.get("/api/admin/server-config")
            mcp_whoami = asyncio.run(_mcp_whoami(f"{live.base_url}/mcp", tokens[1]))

            # ... all answered while every slow query is still held
            assert not holder.gate.is_set() and not any(f.done() for f in held)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert whoami.status_code == 200, whoami.text
            assert catalog.status_code == 200, catalog.text
            assert users.status_code == 200 and config.status_code == 200
            assert mcp_whoami.structured_content["email"]

            holder.gate.set()
            rest = [f.result(GENEROUS * 2) for f in held[:-1]]
            mcp = held[-1].result(GENEROUS * 2)
        assert [r.status_code for r in rest] == [200] * len(rest)
        assert all(not r.is_error for r in mcp), [r.content for r in mcp if r.is_error]
        for client in (*clients, analyst, admin):
            client.close()


async def _mcp_whoami(url: str, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=GENEROUS) as http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        return await session.call_tool("whoami", {})


def test_refusals_that_clear_by_themselves_say_when(services: Services) -> None:
    """too_many_queries and budget_exhausted carry retry_after_seconds, and the REST API
    sends it as Retry-After; other refusals send none."""
    from agnes_mcp.api.error_handlers import error_response
    from agnes_mcp.rails.refusals import BudgetExhausted, TableNotFound

    principal = services.tokens.authenticate(token_for(services, add_user(services)))
    with pytest.raises(BudgetExhausted) as spent:
        services.query.budget.check_daily(principal, 10**18)
    wait = spent.value.details["retry_after_seconds"]
    assert 1 <= wait <= 24 * 3600  # until 00:00 UTC
    assert error_response(spent.value).headers["Retry-After"] == str(wait)
    assert "Retry-After" not in error_response(TableNotFound("no such table")).headers
