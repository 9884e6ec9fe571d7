"""50 analysts on 2 cores: concurrent MCP sessions against ``agnes demo``, and the same load
against a bare FastMCP + DuckDB server on the same parquet files (``fleet_baseline.py``),
in the same run, arms interleaved.

Each analyst is a light client: raw JSON-RPC on a keep-alive connection of its own
(:mod:`benchmarks.light_http`: no SDK, no validation; all 50 in one asyncio process),
``initialize`` + ``notifications/initialized`` once, then ``tools/call`` in turn:
``catalog``, ``schema`` of orders, and the demo's GROUP BY. Every analyst is its own user
(a token each, in the demo's Analysts group, so grants apply). Two phases per arm:

- paced: a uniform think time of 1-3 s before each call (an agent's pace), for a fixed
  time, with a ``/healthz`` prober every 100 ms throughout;
- saturation: the same sessions with no think time: calls/s.

Reported per arm: p50/p95/p99 of each tool and of ``/healthz``, calls/s, errors (any
non-200, JSON-RPC error or ``isError`` result; must be 0), and the server process's CPU
(cores used on average) and peak RSS (psutil). The demo server runs with
``scan_caps.concurrent_queries`` raised to 64 so that saturation measures work done, not
``too_many_queries`` refusals (the default, 20, is never reached at the paced load).

    uv run python benchmarks/run.py --only fleet [--quick]
    uv run python -m benchmarks.bench_fleet [--quick] [--rounds N] [--profile loop.pstats]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.harness import REPO, Result, agnes_process, percentile, wait_ok
from benchmarks.light_http import Connection

ANALYSTS = 50
GROUP_BY = "SELECT status, count(*) FROM orders GROUP BY 1"
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("catalog", "catalog", {}),
    ("schema", "schema", {"table": "orders"}),
    ("group_by", "query", {"sql": GROUP_BY}),
]
PROTOCOL = "2025-06-18"
MCP_PATH = "/mcp/"
HEALTH_EVERY = 0.1
PROFILE_ENV = "BENCH_PROFILE_OUT"  # read by benchmarks/profiled_serve.py
CONFIG = """\
marketplace:
  allow_local: true
scan_caps:
  concurrent_queries: 64
  concurrent_queries_per_user: 5
"""


@dataclass
class Phase:
    """What one arm's phase measured."""

    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, by tool
    health: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0
    peak_rss: int = 0
    client_cpu_seconds: float = 0.0

    @property
    def calls(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def calls_per_second(self) -> float:
        return self.calls / self.seconds

    def cores(self) -> float:
        return self.cpu_seconds / self.seconds

    def cpu_ms_per_call(self) -> float:
        return self.cpu_seconds / self.calls * 1000 if self.calls else float("nan")

    def ms(self, tool: str, q: float) -> float:
        samples = self.health if tool == "health" else self.latencies.get(tool, [])
        return percentile(samples, q) * 1000 if samples else float("nan")


# --- the light client --------------------------------------------------------------------


class Session:
    """One MCP session over raw JSON-RPC, on a connection of its own."""

    def __init__(self, base_url: str, token: str) -> None:
        self.connection = Connection(base_url)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        self.ids = itertools.count(1)

    async def start(self) -> None:
        answer = await self.connection.post_json(
            MCP_PATH,
            {
                "jsonrpc": "2.0",
                "id": next(self.ids),
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "bench-fleet", "version": "1"},
                },
            },
            self.headers,
        )
        if answer.status != 200:
            raise RuntimeError(f"initialize: HTTP {answer.status} {answer.body[:200]!r}")
        self.headers["mcp-session-id"] = answer.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = PROTOCOL
        done = await self.connection.post_json(
            MCP_PATH, {"jsonrpc": "2.0", "method": "notifications/initialized"}, self.headers
        )
        if done.status not in (200, 202):
            raise RuntimeError(f"notifications/initialized: HTTP {done.status}")

    async def call(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """Call ``tool``; the error (None when it answered)."""
        answer = await self.connection.post_json(
            MCP_PATH,
            {
                "jsonrpc": "2.0",
                "id": next(self.ids),
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            },
            self.headers,
        )
        if answer.status != 200:
            return f"{tool}: HTTP {answer.status} {answer.body[:200]!r}"
        body = answer.json()
        if "error" in body:
            return f"{tool}: JSON-RPC {body['error']}"[:300]
        if body.get("result", {}).get("isError"):
            return f"{tool}: isError {json.dumps(body['result'])[:300]}"
        return None


async def _analyst(
    session: Session, phase: Phase, stop_at: float, think: tuple[float, float] | None
) -> None:
    first = random.randrange(len(CALLS))
    for label, tool, arguments in itertools.cycle(CALLS[first:] + CALLS[:first]):
        if think:
            await asyncio.sleep(random.uniform(*think))
        if time.monotonic() >= stop_at:
            return
        started = time.perf_counter()
        try:
            error = await session.call(tool, arguments)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            error = f"{tool}: {exc!r} after {time.perf_counter() - started:.2f} s"
        elapsed = time.perf_counter() - started
        if error is None:
            phase.latencies.setdefault(label, []).append(elapsed)
        else:
            phase.errors.append(error)


async def _prober(base_url: str, phase: Phase, server: psutil.Process, stop_at: float) -> None:
    connection = Connection(base_url)
    try:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            answer = await connection.request("GET", "/healthz")
            if answer.status == 200:
                phase.health.append(time.perf_counter() - started)
            else:
                phase.errors.append(f"/healthz: HTTP {answer.status}")
            phase.peak_rss = max(phase.peak_rss, server.memory_info().rss)
            await asyncio.sleep(HEALTH_EVERY)
    finally:
        await connection.close()


async def _phase(
    base_url: str, tokens: list[str], pid: int, seconds: float, think: tuple[float, float] | None
) -> Phase:
    server = psutil.Process(pid)
    me = psutil.Process()
    sessions = [Session(base_url, token) for token in tokens]
    try:
        await asyncio.gather(*(s.start() for s in sessions))
        phase = Phase(seconds)
        cpu_before, client_before = _cpu(server), _cpu(me)
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(
            _prober(base_url, phase, server, stop_at),
            *(_analyst(s, phase, stop_at, think) for s in sessions),
        )
        phase.seconds = time.monotonic() - started
        phase.cpu_seconds = _cpu(server) - cpu_before
        phase.client_cpu_seconds = _cpu(me) - client_before
    finally:
        await asyncio.gather(*(s.connection.close() for s in sessions))
    return phase


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


# --- the two servers ---------------------------------------------------------------------


@dataclass
class Arm:
    name: str
    base_url: str
    pid: int
    tokens: list[str]


def _users(base_url: str, admin: str) -> list[str]:
    """ANALYSTS users in the demo's Analysts group, a data token each."""
    tokens = []
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {admin}"}, timeout=60
    ) as client:
        for i in range(ANALYSTS):
            email = f"analyst{i:02d}@example.com"
            client.post("/api/admin/users", json={"email": email}).raise_for_status()
            client.post(
                "/api/admin/groups/Analysts/members", json={"user": email}
            ).raise_for_status()
            made = client.post("/api/tokens", json={"name": "fleet", "user": email})
            tokens.append(made.raise_for_status().json()["token"])
    return tokens


@contextmanager
def _servers(root: Path, scale: float, profiled: bool = False) -> Iterator[tuple[Arm, Arm]]:
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    (data_dir / "instance.yaml").write_text(CONFIG)
    entry = (str(REPO / "benchmarks" / "profiled_serve.py"),) if profiled else ("-m", "cli.main")
    with agnes_process(data_dir, "demo", "--scale", str(scale), entry=entry) as (ours, url):
        wait_ok(f"{url}/healthz", time.monotonic() + 60)
        admin = json.loads((data_dir / "state" / "demo-tokens.json").read_text())["admin"]
        tokens = _users(url, admin)
        with agnes_process(
            data_dir, "--host", "127.0.0.1", entry=(str(REPO / "benchmarks" / "fleet_baseline.py"),)
        ) as (bare, bare_url):
            wait_ok(f"{bare_url}/healthz", time.monotonic() + 60)
            yield (
                Arm("agnes", url, ours.pid, tokens),
                Arm("bare FastMCP + DuckDB", bare_url, bare.pid, tokens),
            )


# --- the run -------------------------------------------------------------------------------


def measure(
    scale: float,
    paced_seconds: float,
    saturated_seconds: float,
    rounds: int,
    profile: Path | None = None,
) -> dict[str, dict[str, list[Phase]]]:
    """Phases by arm ("agnes", "bare") and kind ("paced", "saturated"), one per round.
    With ``profile``, our server's event loop is profiled during its first saturation
    phase (:mod:`benchmarks.profiled_serve`) and the pstats written there."""
    found: dict[str, dict[str, list[Phase]]] = {
        arm: {"paced": [], "saturated": []} for arm in ("agnes", "bare")
    }
    if profile is not None:
        os.environ[PROFILE_ENV] = str(profile)
    with (
        tempfile.TemporaryDirectory() as tmp,
        _servers(Path(tmp), scale, profiled=profile is not None) as (ours, bare),
    ):
        for round_ in range(rounds):
            arms = [("agnes", ours), ("bare", bare)]
            if round_ % 2:
                arms.reverse()
            for key, arm in arms:
                # a short warm-up: first calls open files and fill caches
                asyncio.run(_phase(arm.base_url, arm.tokens[:5], arm.pid, 2, None))
                found[key]["paced"].append(
                    asyncio.run(_phase(arm.base_url, arm.tokens, arm.pid, paced_seconds, (1, 3)))
                )
                profiling = profile is not None and key == "agnes" and round_ == 0
                if profiling:
                    os.kill(arm.pid, signal.SIGUSR1)
                found[key]["saturated"].append(
                    asyncio.run(_phase(arm.base_url, arm.tokens, arm.pid, saturated_seconds, None))
                )
                if profiling and profile is not None:
                    _dump_profile(arm.pid, profile)
    return found


def _dump_profile(pid: int, out: Path) -> None:
    done = Path(f"{out}.done")
    done.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 60
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    done.unlink(missing_ok=True)


def _med(phases: list[Phase], fn: Any) -> float:
    return statistics.median(fn(p) for p in phases)


def _row(
    found: dict[str, dict[str, list[Phase]]],
    kind: str,
    name: str,
    fn: Any,
    unit: str,
    target: str,
    note: str = "",
) -> Result:
    return Result(
        name,
        _med(found["agnes"][kind], fn),
        unit,
        f"bare FastMCP + DuckDB server, same load, same run ({name.split(': ', 1)[-1]})",
        _med(found["bare"][kind], fn),
        target,
        note=note,
    )


def _summary(phases: list[Phase]) -> str:
    parts = []
    for tool in [c[0] for c in CALLS] + ["health"]:
        p50, p95, p99 = (_med(phases, lambda p, q=q, t=tool: p.ms(t, q)) for q in (0.5, 0.95, 0.99))
        parts.append(f"{tool} {p50:.1f}/{p95:.1f}/{p99:.1f}")
    errors = sum(len(p.errors) for p in phases)
    first = next((e for p in phases for e in p.errors), "")
    return (
        "p50/p95/p99 ms: " + ", ".join(parts) + f"; {_med(phases, Phase.calls_per_second):.1f} "
        f"calls/s; errors {errors}" + (f" (first: {first})" if first else "") + "; server "
        f"{_med(phases, Phase.cores):.2f} cores, peak RSS "
        f"{_med(phases, lambda p: p.peak_rss) / 2**20:.0f} MiB; client "
        f"{_med(phases, lambda p: p.client_cpu_seconds / p.seconds):.2f} cores"
    )


def results(found: dict[str, dict[str, list[Phase]]], rounds: int) -> list[Result]:
    paced = f"{ANALYSTS} analysts, think 1-3 s"
    ours_p, bare_p = found["agnes"]["paced"], found["bare"]["paced"]
    ours_s, bare_s = found["agnes"]["saturated"], found["bare"]["saturated"]
    of = f"median of {rounds} round(s)"
    return [
        _row(found, "paced", f"{paced}: catalog p95", lambda p: p.ms("catalog", 0.95), "ms",
             "<= 50 ms", note=f"{of}; agnes {_summary(ours_p)}"),
        _row(found, "paced", f"{paced}: schema p95", lambda p: p.ms("schema", 0.95), "ms",
             "report", note=f"bare {_summary(bare_p)}"),
        _row(found, "paced", f"{paced}: GROUP BY query p95", lambda p: p.ms("group_by", 0.95),
             "ms", "<= 300 ms"),
        _row(found, "paced", f"{paced}: /healthz p99", lambda p: p.ms("health", 0.99), "ms",
             "<= 50 ms"),
        _row(found, "paced", f"{paced}: errors", lambda p: float(len(p.errors)), "", "0"),
        _row(found, "paced", f"{paced}: server CPU", Phase.cores, "c", "report",
             note=f"peak RSS agnes {_med(ours_p, lambda p: p.peak_rss) / 2**20:.0f} MiB, bare "
             f"{_med(bare_p, lambda p: p.peak_rss) / 2**20:.0f} MiB"),
        _row(found, "saturated", f"{ANALYSTS} sessions, no think time: calls/s",
             Phase.calls_per_second, "/s", ">= 300 calls/s (5x the ~60 of issue 19)",
             note=f"{of}; agnes {_summary(ours_s)}; bare {_summary(bare_s)}"),
        _row(found, "saturated", f"{ANALYSTS} sessions, no think time: server CPU per call",
             Phase.cpu_ms_per_call, "ms", "report (what bounds calls/s once the cores are busy)",
             note="calls/s is cores x 1000 / this: on a machine other work shares, compare "
             "this and the ratio, not calls/s alone"),
        _row(found, "saturated", f"{ANALYSTS} sessions, no think time: errors",
             lambda p: float(len(p.errors)), "", "0"),
    ]  # fmt: skip


def run(quick: bool = False, scale: float = 1.0) -> list[Result]:
    rounds = 1 if quick else 2
    found = measure(scale, 15 if quick else 60, 10 if quick else 20, rounds)
    return results(found, rounds)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--paced", type=float, help="seconds of the paced phase")
    parser.add_argument("--saturated", type=float, help="seconds of the saturation phase")
    parser.add_argument("--rounds", type=int)
    parser.add_argument(
        "--profile", type=Path, help="write our event loop's pstats (first saturation) here"
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 2)
    found = measure(
        args.scale,
        args.paced or (15 if args.quick else 60),
        args.saturated or (10 if args.quick else 20),
        rounds,
        args.profile,
    )
    for r in results(found, rounds):
        print(f"{r.name}: {r.value:.2f} {r.unit} vs {r.baseline:.2f} ({r.ratio:.2f}x) [{r.target}]")
        if r.note:
            print(f"    {r.note}")
    if args.profile is not None:
        import pstats

        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(30)
