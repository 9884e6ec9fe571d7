"""Kept results: per token, bounded in all; past the bound the heaviest token gives up its
own oldest results, never another session's, and never the result it was just handed."""

from __future__ import annotations

import pyarrow as pa

from agnes_mcp.mcp_server.result_store import ResultStore


def _rows(n: int) -> pa.Table:
    return pa.table({"x": pa.array(range(n), pa.int64())})  # 8 bytes a row


def test_a_session_keeping_large_results_gives_up_its_own() -> None:
    store = ResultStore(total_bytes=10_000)
    small = [store.keep("analyst-a", _rows(10), "SELECT small") for _ in range(3)]
    large = [store.keep("agent-b", _rows(400), f"SELECT large {i}") for i in range(5)]
    assert set(store.extras("analyst-a")) == set(small)  # the other session's results stay
    kept_b = set(store.extras("agent-b"))
    assert large[-1] in kept_b and large[0] not in kept_b  # its oldest went first
    held = [e.data for o in ("analyst-a", "agent-b") for e in store.extras(o).values()]
    assert sum(t.nbytes for t in held if isinstance(t, pa.Table)) <= 10_000


def test_the_result_just_kept_is_never_the_one_evicted() -> None:
    store = ResultStore(total_bytes=1_000)
    older = store.keep("a", _rows(50), None)
    huge = store.keep("b", _rows(10_000), None)  # alone over the bound: kept, the rest goes
    assert set(store.extras("b")) == {huge}
    assert older not in store.extras("a")
    data = store.extras("b")[huge].data
    assert isinstance(data, pa.Table) and data.num_rows == 10_000
