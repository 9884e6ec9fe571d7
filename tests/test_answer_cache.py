"""The kept-answer cache of the listing tools: keyed by caller and state, bounded, and
never keeping a refusal."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from fastmcp.tools.base import ToolResult

from agnes_mcp.mcp_server.answer_cache import AnswerCache
from agnes_sync.errors import AgnesError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> ToolResult:
        self.calls += 1
        return ToolResult(structured_content={"n": self.calls})


async def test_same_caller_and_state_answer_from_memory() -> None:
    state: list[Hashable] = [("gen", 1)]
    cache = AnswerCache(lambda: state[0])
    work = Counter()
    first = await cache.answer(("catalog", None), work)
    assert await cache.answer(("catalog", None), work) is first
    assert work.calls == 1
    await cache.answer(("catalog", "orders"), work)  # other arguments: computed
    state[0] = ("gen", 2)  # the store changed
    assert (await cache.answer(("catalog", None), work)).structured_content == {"n": 3}


async def test_without_a_key_every_call_is_computed() -> None:
    for key in (None, lambda: None):  # no key function, or no caller (stdio)
        cache = AnswerCache(key)
        work = Counter()
        await cache.answer(("schema", "t"), work)
        await cache.answer(("schema", "t"), work)
        assert work.calls == 2 and len(cache) == 0


async def test_refusals_are_not_kept() -> None:
    cache = AnswerCache(lambda: "state")
    tries = Counter()

    def refuse() -> ToolResult:
        tries()
        raise AgnesError("no")

    for _ in range(2):
        with pytest.raises(AgnesError):
            await cache.answer(("schema", "x"), refuse)
    assert tries.calls == 2 and len(cache) == 0


async def test_the_oldest_answers_go_first() -> None:
    cache = AnswerCache(lambda: "state", max_entries=3)
    work = Counter()
    for table in ("a", "b", "c"):
        await cache.answer(("schema", table), work)
    await cache.answer(("schema", "a"), work)  # used again: now the newest
    await cache.answer(("schema", "d"), work)  # evicts b
    assert len(cache) == 3 and work.calls == 4
    await cache.answer(("schema", "a"), work)
    assert work.calls == 4
    await cache.answer(("schema", "b"), work)
    assert work.calls == 5
