"""The MCP data tools: a small query's round trip over raw DuckDB, in process (fastmcp's
client) and over streamable HTTP (the official client against ``agnes demo``), and the
catalog with 1,000 tables.

- in process: the ``query`` tool on the demo (analyst's grants), the services as
  ``agnes serve`` runs them once started (``harness.as_served``), with a new SQL text each
  call (cold: every check runs) and the same text (warm: the accepted parse is reused),
  against DuckDB running the same query on the same parquet into Arrow in this process
  (and on the same rows converted to DuckDB's storage, what the sandbox reads, beside).
  A no-op fastmcp tool is timed too: the floor any in-process MCP call pays. And what a
  client spends checking a 200-row answer against the tool's output schema (as the MCP
  SDK's client does), ours against pydantic's own schema for the same model.
- stdio: ``agnes mcp`` in a workspace pulled from the demo (what Claude Code runs on an
  analyst's laptop), the official client, against raw DuckDB on the workspace's files.
- HTTP: the same over ``/mcp``, against ``whoami`` over the same session as the floor,
  and against a bare FastMCP server (``fleet_baseline.py``: FastMCP's streamable HTTP app
  under uvicorn, an async tool running the SQL on DuckDB over the same parquet files)
  called by the same official client in the same run, blocks of calls interleaved.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
from fastmcp import Client, FastMCP
from jsonschema import Draft202012Validator
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.mcp_server.output_schemas import answer_or_refusal
from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server import build_single_user_mcp
from agnes_mcp.mcp_server.server_backend import ServerBackend
from agnes_mcp.mcp_server.tool_models import QueryOutput
from agnes_mcp.services import Services
from agnes_mcp.settings import load_settings
from agnes_mcp.store.groups import MembershipSource
from agnes_sync.pull.pull import pull
from agnes_sync.server_api import ServerApi
from agnes_sync.table_spec import TableSpec
from agnes_sync.workspace.layout import WorkspacePaths
from benchmarks.bench_query import _demo_services
from benchmarks.bench_rebuild import write_extracts
from benchmarks.harness import (
    REPO,
    Result,
    agnes_process,
    agnes_server,
    as_served,
    median,
    time_calls,
    wait_ok,
)
from benchmarks.light_memory import connected
from benchmarks.query_latency import RawDuckDB

TINY = "SELECT count(*) AS n, max(unit_price) AS top FROM products WHERE product_id > {i}"
GROUP_BY = "SELECT status, count(*) FROM orders GROUP BY 1"
WIDE = "SELECT * FROM orders LIMIT 200"


async def _samples(
    call: Callable[[int], Awaitable[object]], n: int, warmup: int = 30
) -> list[float]:
    for i in range(warmup):
        await call(i)
    out = []
    for i in range(n):
        started = time.perf_counter()
        await call(warmup + i)
        out.append(time.perf_counter() - started)
    return out


@contextmanager
def _raw_products(files: list[str], native: Path | None = None) -> Iterator[RawDuckDB]:
    """Raw DuckDB on the products' files (on the same rows converted, with ``native``)."""
    raw = RawDuckDB(files, native=native, table="products")
    try:
        yield raw
    finally:
        raw.close()


def _raw(files: list[str], n: int) -> float:
    with _raw_products(files) as raw:
        samples = time_calls(lambda: raw.query(TINY.format(i=0)), n)
    return median(samples) * 1000


async def _interleaved(
    variants: dict[str, Callable[[], Awaitable[object]]], n: int
) -> dict[str, list[float]]:
    """Seconds per call of each variant, the variants taking turns (a slow phase of the
    machine hits them all): twice as many rounds as variants, each variant first in two
    of them, ``n`` timed calls each in all, every round's after 10 untimed ones."""
    names = list(variants)
    rounds = 2 * len(names)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for block in range(rounds):
        for name in names[block % len(names) :] + names[: block % len(names)]:
            call = variants[name]
            for _ in range(10):
                await call()
            for _ in range(max(1, n // rounds)):
                started = time.perf_counter()
                await call()
                runs[name].append(time.perf_counter() - started)
    return runs


def _in_process(n: int) -> list[Result]:
    noop = FastMCP("floor")

    @noop.tool()
    def ping() -> dict[str, int]:
        return {"ok": 1}

    answers: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp, _demo_services(Path(tmp)) as (services, who):
        mcp = build_single_user_mcp(ServerBackend(services, who, ResultStore()))
        files = list(services.query.catalog.current().tables["products"].files)
        literals = itertools.count(1)  # a new SQL text for every call that asks for one

        def fresh() -> str:
            return TINY.format(i=-next(literals))

        async def service() -> None:
            services.query.run(who, fresh()).answer()

        async def measure(raw_con: RawDuckDB, native_con: RawDuckDB) -> dict[str, list[float]]:
            async def raw() -> None:
                raw_con.query(TINY.format(i=0))

            async def raw_native() -> None:
                native_con.query(TINY.format(i=0))

            async with Client(mcp) as client, Client(noop) as bare, connected(mcp) as light:
                runs = await _interleaved(
                    {
                        "cold": lambda: client.call_tool("query", {"sql": fresh()}),
                        "light": lambda: light.call_tool("query", {"sql": fresh()}),
                        "warm": lambda: client.call_tool("query", {"sql": TINY.format(i=0)}),
                        "floor": lambda: bare.call_tool("ping", {}),
                        "service": service,
                        "raw": raw,
                        "raw_native": raw_native,
                    },
                    n,
                )
                # The client re-validates structuredContent against the output schema
                # (python-jsonschema): part of every call above, not of the server.
                result = await client.call_tool_mcp("query", {"sql": TINY.format(i=0)})
                runs["checks"] = await _samples(
                    lambda i: client.session.validate_tool_result("query", result), n
                )
                wide = await client.call_tool_mcp("query", {"sql": WIDE})
                answers.append(wide.structured_content)
            return runs

        with (
            as_served(services),
            _raw_products(files) as raw_con,
            _raw_products(files, Path(tmp) / "products.duckdb") as native_con,
        ):
            runs = asyncio.run(measure(raw_con, native_con))
    checks = _schema_checks(answers[0], n // 10)
    ms = {name: median(samples) * 1000 for name, samples in runs.items()}
    raw = ms["raw"]
    note = (
        f"raw on the rows converted to DuckDB's storage (what the sandbox reads) "
        f"{ms['raw_native']:.2f} ms; "
        f"the query service alone {ms['service']:.2f} ms; a no-op fastmcp tool call: "
        f"{ms['floor']:.2f} ms; the client's output-schema check: {ms['checks']:.2f} ms"
    )
    rows = (
        ("new SQL each call", "cold"),
        ("new SQL each call, light JSON-RPC client (the server's share)", "light"),
        ("repeated SQL", "warm"),
    )
    return [
        *checks,
        *(
            Result(
                f"MCP query tool in process, {label} (p50)",
                ms[key],
                "ms",
                "raw DuckDB, same query and parquet, to Arrow (p50)",
                raw,
                "overhead <= 1.5 ms",
                note=f"{'PASS' if ms[key] - raw <= 1.5 else 'FAIL'}: "
                f"overhead {ms[key] - raw:.2f} ms; {note}",
            )
            for label, key in rows
        ),
    ]


def _schema_checks(answer: Any, n: int) -> list[Result]:
    """What a client spends checking an answer against the ``query`` tool's output schema
    (``jsonschema``, as the MCP SDK's client does), ours vs pydantic's own for the model."""
    ours = Draft202012Validator(answer_or_refusal(QueryOutput))
    plain = Draft202012Validator(QueryOutput.model_json_schema())
    assert ours.is_valid(answer) and plain.is_valid(answer)
    timed = {
        name: median(time_calls(functools.partial(validator.is_valid, answer), n)) * 1000
        for name, validator in (("ours", ours), ("plain", plain))
    }
    return [
        Result(
            f"a client's check of a query answer, {len(answer['rows'])} rows x "
            f"{len(answer['columns'])} columns, against the tool's output schema (p50)",
            timed["ours"],
            "ms",
            "the same check against pydantic's own schema of the same model (p50)",
            timed["plain"],
            "report (client CPU per answer)",
            note="jsonschema, as the MCP SDK's client checks structuredContent",
        )
    ]


def _over_http(n: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with agnes_server(data_dir, "demo", "--scale", "0.01") as server:
            files = sorted(str(p) for p in data_dir.rglob("products*.parquet"))

            async def measure() -> tuple[list[float], list[float]]:
                headers = {"Authorization": f"Bearer {server.admin_token}"}
                async with (
                    httpx2.AsyncClient(headers=headers, timeout=30) as http,
                    streamable_http_client(f"{server.base_url}/mcp", http_client=http) as streams,
                    ClientSession(streams[0], streams[1]) as session,
                ):
                    await session.initialize()
                    query = await _samples(
                        lambda i: session.call_tool("query", {"sql": TINY.format(i=-i)}), n
                    )
                    floor = await _samples(lambda i: session.call_tool("whoami", {}), n)
                return query, floor

            query, floor = asyncio.run(measure())
            versus_bare = _versus_bare(server.base_url, server.admin_token, data_dir, n)
        raw = _raw(files, n)
    return [
        Result(
            "MCP query tool over streamable HTTP, new SQL each call (p50)",
            median(query) * 1000,
            "ms",
            "raw DuckDB, same query and parquet, to Arrow (p50)",
            raw,
            "overhead <= 5 ms",
            note=f"overhead {median(query) * 1000 - raw:.2f} ms; whoami over the same "
            f"session: {median(floor) * 1000:.2f} ms",
        ),
        *versus_bare,
    ]


def _over_stdio(n: int) -> list[Result]:
    """``agnes mcp`` on stdio in a workspace pulled from the demo (the analyst's token),
    the official client: a small query, new SQL each call, against raw DuckDB on the
    workspace's own files, and ``whoami`` (answered by the server, over HTTP) beside."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        agnes_server(Path(tmp) / "data", "demo", "--scale", "0.01") as server,
        Path(os.devnull).open("w") as quiet,
    ):
        workspace = WorkspacePaths(Path(tmp) / "workspace")
        api = ServerApi(server.base_url, server.admin_token)
        try:
            pulled = pull(workspace, api)
        finally:
            api.close()
        if pulled.failed:
            raise RuntimeError(f"the pull failed: {pulled.as_dict()}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
        env.update(
            AGNES_SERVER_URL=server.base_url,
            AGNES_TOKEN=server.admin_token,
            AGNES_CONFIG_HOME=str(workspace.root / ".config"),
        )
        parameters = StdioServerParameters(
            command=sys.executable, args=["-m", "cli.main", "mcp"], env=env, cwd=workspace.root
        )

        async def measure() -> tuple[list[float], list[float]]:
            async with (
                stdio_client(parameters, errlog=quiet) as streams,
                ClientSession(streams[0], streams[1]) as session,
            ):
                await session.initialize()

                async def query(i: int) -> None:
                    answer = await session.call_tool("query", {"sql": TINY.format(i=-i)})
                    assert not answer.is_error, answer

                floor = await _samples(lambda i: session.call_tool("whoami", {}), n)
                return await _samples(query, n), floor

        query, floor = asyncio.run(measure())
        files = sorted(str(p) for p in workspace.data.rglob("products*.parquet"))
        raw = _raw(files, n)
    return [
        Result(
            "MCP query tool over stdio, agnes mcp in a workspace, new SQL each call (p50)",
            median(query) * 1000,
            "ms",
            "raw DuckDB, same query on the workspace's parquet, to Arrow (p50)",
            raw,
            "report (what Claude Code waits for on an analyst's laptop)",
            note=f"overhead {median(query) * 1000 - raw:.2f} ms; whoami over the same "
            f"session (the server answers it, over HTTP): {median(floor) * 1000:.2f} ms",
        )
    ]


async def _session_samples(
    url: str, token: str | None, calls: list[tuple[str, dict[str, object]]]
) -> list[float]:
    """Seconds per call of ``calls`` over one official-client session (after a warm-up)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()

        async def call(i: int) -> None:
            tool, arguments = calls[i % len(calls)]
            answer = await session.call_tool(tool, arguments)
            assert not answer.is_error, answer

        return await _samples(call, len(calls) - 20, warmup=20)


def _versus_bare(url: str, token: str, data_dir: Path, n: int) -> list[Result]:
    """Our ``query`` against a bare FastMCP tool running the same SQL, same client, same
    run: blocks of calls alternate between the two servers; medians over all blocks."""
    baseline = (str(REPO / "benchmarks" / "fleet_baseline.py"),)
    blocks = 4
    per_block = n // blocks + 20  # 20 warm-up calls each block

    def block_sql(kind: str, block: int) -> list[str]:
        if kind == "group_by":
            return [GROUP_BY] * per_block
        return [TINY.format(i=-(block * 100_000 + j)) for j in range(per_block)]

    labels = {"group_by": "the demo GROUP BY", "tiny": "a small query, new SQL each call"}
    rows = []
    with agnes_process(data_dir, "--host", "127.0.0.1", entry=baseline) as (_, bare_url):
        wait_ok(f"{bare_url}/healthz", time.monotonic() + 60)
        for kind, label in labels.items():
            ours: list[float] = []
            bare: list[float] = []
            for block in range(blocks):
                calls: list[tuple[str, dict[str, object]]] = [
                    ("query", {"sql": sql}) for sql in block_sql(kind, block)
                ]
                arms = [(ours, url, token), (bare, bare_url, None)]
                for samples, base, bearer in arms if block % 2 == 0 else reversed(arms):
                    samples.extend(asyncio.run(_session_samples(base, bearer, calls)))
            rows.append(
                Result(
                    f"MCP query tool over streamable HTTP, {label} (p50)",
                    median(ours) * 1000,
                    "ms",
                    "bare FastMCP tool running the same SQL on DuckDB over the same parquet, "
                    "same official client, same run (p50)",
                    median(bare) * 1000,
                    "<= 1.5x",
                    note=f"p95 {sorted(ours)[int(0.95 * len(ours))] * 1000:.2f} ms vs "
                    f"{sorted(bare)[int(0.95 * len(bare))] * 1000:.2f} ms; Agnes reads the "
                    "tables it converted to DuckDB's storage at start (its default), the bare "
                    "tool the parquet files",
                )
            )
    return rows


def _catalog(n: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_extracts(data, 10, 100)
        services = Services.open(load_settings(data_dir=data, scheduler_enabled=False))
        try:
            for s in range(10):
                for t in range(100):
                    services.registry.add(
                        TableSpec(
                            id=f"t{s:04d}_{t:03d}",
                            source_type=f"src{s:04d}",
                            description=f"table {t} of source {s}",
                        )
                    )
            services.orchestrator.rebuild()
            admin = services.users.add("bench@example.com", "Bench")
            services.groups.add_member(ADMIN_GROUP_ID, admin.id, MembershipSource.SYSTEM_SEED)
            _, token = services.tokens.create(admin.id, "bench", ["data", "admin"])
            who = services.tokens.authenticate(token)
            mcp = build_single_user_mcp(ServerBackend(services, who, ResultStore()))

            async def measure() -> tuple[list[float], list[float]]:
                async with Client(mcp) as client:
                    first = await client.call_tool("catalog", {})
                    assert first.structured_content["total_tables"] == 1000
                    catalog = await _samples(lambda i: client.call_tool("catalog", {}), n, 5)
                    whoami = await _samples(lambda i: client.call_tool("whoami", {}), n, 5)
                return catalog, whoami

            catalog, whoami = asyncio.run(measure())
        finally:
            services.close()
    return [
        Result(
            "MCP catalog tool, 1,000 tables, first page (p50)",
            median(catalog) * 1000,
            "ms",
            "MCP whoami tool, same client (p50)",
            median(whoami) * 1000,
            "report",
        )
    ]


def run(quick: bool = False) -> list[Result]:
    n = 100 if quick else 400
    return [*_in_process(n), *_over_stdio(n), *_over_http(n), *_catalog(50 if quick else 200)]
