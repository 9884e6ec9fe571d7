"""Kept catalog and schema answers over HTTP: repeated calls answer from memory, yet a
grant given or taken, a new member of a group, or another caller never sees a stale or
someone else's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from agnes_mcp.demo import ANALYSTS
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.groups import MembershipSource
from tests.conftest import DemoServer, add_user, running_demo, token_for

pytestmark = pytest.mark.anyio
HIDDEN = "support_tickets"  # not granted to the demo's Analysts


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(Path(tmp_path_factory.mktemp("kept-answers"))) as server:
        yield server


@asynccontextmanager
async def session_for(demo: DemoServer, token: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        streamable_http_client(f"{demo.live.base_url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


async def table_ids(session: ClientSession) -> set[str]:
    answer = await session.call_tool("catalog", {})
    assert not answer.is_error, answer.content
    assert answer.structured_content is not None
    return {t["id"] for t in answer.structured_content["tables"]}


async def schema_code(session: ClientSession, table: str) -> str | None:
    answer = await session.call_tool("schema", {"table": table})
    if not answer.is_error:
        return None
    assert answer.structured_content is not None
    return str(answer.structured_content["error"]["code"])


async def test_a_grant_shows_at_once_and_a_revoked_one_goes(demo: DemoServer) -> None:
    services = demo.live.services
    group = services.groups.find(ANALYSTS)
    async with session_for(demo, demo.analyst_token) as session:
        before = await table_ids(session)
        assert HIDDEN not in before and "orders" in before
        assert await table_ids(session) == before  # the kept answer
        assert await schema_code(session, HIDDEN) == "table_not_found"
        grant = services.grants.add(group.id, ResourceType.TABLE, HIDDEN, granted_by="test")
        try:
            assert await table_ids(session) == before | {HIDDEN}
            assert await schema_code(session, HIDDEN) is None
        finally:
            services.grants.delete(grant.id)
        assert await table_ids(session) == before
        assert await schema_code(session, HIDDEN) == "table_not_found"


async def test_each_caller_gets_their_own_answer(demo: DemoServer) -> None:
    services = demo.live.services
    outsider = add_user(services)  # Everyone only: no table granted
    analyst = add_user(services)
    services.groups.add_member(
        services.groups.find(ANALYSTS).id, analyst.id, MembershipSource.ADMIN
    )
    async with (
        session_for(demo, token_for(services, outsider)) as theirs,
        session_for(demo, token_for(services, analyst)) as mine,
        session_for(demo, demo.admin_token) as admins,
    ):
        for _ in range(2):  # the second round answers from memory
            assert await table_ids(theirs) == set()
            assert "orders" in await table_ids(mine) and HIDDEN not in await table_ids(mine)
            assert HIDDEN in await table_ids(admins)
            assert await schema_code(theirs, "orders") == "table_not_found"
            assert await schema_code(mine, "orders") is None
        # Joining the group is a change of the store: the next answer is a new one.
        services.groups.add_member(
            services.groups.find(ANALYSTS).id, outsider.id, MembershipSource.ADMIN
        )
        assert "orders" in await table_ids(theirs)
        assert await schema_code(theirs, "orders") is None
