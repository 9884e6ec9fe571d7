"""Fair sharing: how fast ``/healthz`` and an admin call answer while 100 sessions run slow
queries, against the same calls on an idle server. (The issue measured 24.5 s for
``/healthz`` under 45 sessions of ``sleep_ms(25000)``, and ~30 s for admin calls under 85.)

Two kinds of "slow":

- held: 100 queries (20 users x 5) held inside the sandbox by a hook that waits on an
  Event, on an in-process server: they hold their threads and nothing else, so this
  measures thread starvation alone (the class of the issue).
- CPU-bound: 100 real cross joins (``count(*)`` over 10^12 pairs, stopped by the query
  timeout) from 20 users on an ``agnes serve`` subprocess: what this machine's cores
  give on top (query threads run at a lower CPU priority than the rest).

The held and the first CPU-bound run raise the caps (``concurrent_queries`` 120,
``concurrent_queries_per_user`` 100) so all 100 run; the last keeps the defaults: 20 run
and the other 80 are refused at once with 429 ``too_many_queries``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import Result, agnes_server, median, percentile, time_calls

SESSIONS = 100
USERS = 20
SLOW_SQL = "SELECT count(*) FROM range(1000000) a, range(1000000) b"
HOLD_SQL = "SELECT 'agnes_hold' AS held"
CAPS = {"concurrent_queries": SESSIONS + 20, "concurrent_queries_per_user": SESSIONS}


@contextmanager
def _in_process_server(root: Path) -> Iterator[tuple[str, str, Any]]:
    """The real app under uvicorn on 127.0.0.1 in a thread: (base URL, admin token, services)."""
    import uvicorn

    from agnes_mcp.api.app import create_app
    from agnes_mcp.bootstrap_admin import ensure_admin
    from agnes_mcp.serve import bind, uvicorn_config
    from agnes_mcp.services import Services
    from agnes_mcp.settings import load_settings

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = load_settings(data_dir=root / "data", port=port, log_level="warning", scan_caps=CAPS)
    services = Services.open(settings)
    token_file = ensure_admin(services)
    assert token_file is not None
    server = uvicorn.Server(uvicorn_config(settings, create_app(services)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started:
        started.wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}", token_file.read_text().strip(), services
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        services.close()


@contextmanager
def _holding_hook() -> Iterator[tuple[threading.Semaphore, threading.Event]]:
    """Queries saying ``agnes_hold`` wait inside the sandbox until the Event is set."""
    from agnes_mcp.rails.sandbox import Sandbox

    entered, gate = threading.Semaphore(0), threading.Event()
    original = Sandbox.run

    def run(self: Sandbox, sql: str, limits: Any, *args: Any, **options: Any) -> Any:
        if "agnes_hold" in sql:
            entered.release()
            gate.wait(120)
        return original(self, sql, limits, *args, **options)

    Sandbox.run = run  # type: ignore[method-assign]
    try:
        yield entered, gate
    finally:
        gate.set()
        Sandbox.run = original  # type: ignore[method-assign]


def _sessions(
    base_url: str, tokens: list[str], sql: str
) -> tuple[ThreadPoolExecutor, list[Future[int]]]:
    pool = ThreadPoolExecutor(max_workers=SESSIONS)

    def one(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=180) as client:
            return client.post("/api/query", json={"sql": sql, "mode": "local"}).status_code

    return pool, [pool.submit(one, tokens[i % len(tokens)]) for i in range(SESSIONS)]


def _probe(base_url: str, admin: str, n: int) -> tuple[list[float], list[float]]:
    with httpx.Client(base_url=base_url, timeout=180) as anonymous:
        health = time_calls(lambda: anonymous.get("/healthz").raise_for_status(), n, warmup=5)
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=180) as client:
        config = time_calls(
            lambda: client.get("/api/admin/server-config").raise_for_status(), n // 4, warmup=2
        )
    return health, config


def _held(n: int) -> list[Result]:
    from agnes_mcp.auth.principal import TokenScope

    with (
        tempfile.TemporaryDirectory() as tmp,
        _in_process_server(Path(tmp)) as (url, admin, services),
    ):
        tokens = []
        for i in range(USERS):
            user = services.users.add(f"bench{i}@example.com", "Bench")
            tokens.append(services.tokens.create(user.id, "bench", [TokenScope.DATA.value])[1])
        idle_health, idle_config = _probe(url, admin, n)
        with _holding_hook() as (entered, gate):
            pool, held = _sessions(url, tokens, HOLD_SQL)
            for _ in range(SESSIONS):
                entered.acquire(timeout=120)
            busy_health, busy_config = _probe(url, admin, n)
            still_held = not any(f.done() for f in held)
            gate.set()
            statuses = [f.result() for f in held]
            pool.shutdown()
    note = (
        f"all {SESSIONS} queries held during the probes: {still_held}; "
        f"statuses {sorted(set(statuses))}"
    )
    return _results("held in the sandbox", idle_health, busy_health, idle_config, busy_config, note)


def _users(base_url: str, admin: str) -> list[str]:
    """Tokens of USERS new users, made through the admin API."""
    headers = {"Authorization": f"Bearer {admin}"}
    tokens = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for i in range(USERS):
            email = f"bench{i}@example.com"
            client.post("/api/admin/users", json={"email": email}).raise_for_status()
            made = client.post("/api/tokens", json={"name": "bench", "user": email})
            tokens.append(made.raise_for_status().json()["token"])
    return tokens


def _cpu_bound(n: int, timeout_seconds: int, caps: dict[str, int] | None) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(parents=True)
        settings = f"query_timeout_seconds: {timeout_seconds}\n"
        if caps:
            settings += "scan_caps:\n" + "".join(f"  {k}: {v}\n" for k, v in caps.items())
        (data_dir / "instance.yaml").write_text(settings)
        with agnes_server(data_dir) as server:
            tokens = _users(server.base_url, server.admin_token)
            idle_health, idle_config = _probe(server.base_url, server.admin_token, n)
            pool, running = _sessions(server.base_url, tokens, SLOW_SQL)
            busy_health, busy_config = _probe(server.base_url, server.admin_token, n)
            during = sum(not f.done() for f in running)
            statuses = [f.result() for f in running]
            pool.shutdown()
    counts = {code: statuses.count(code) for code in sorted(set(statuses))}
    kind = (
        "CPU-bound cross joins, all admitted"
        if caps
        else "CPU-bound cross joins, default caps (20 run, the rest 429)"
    )
    note = (
        f"{during} still running when the probes ended; statuses {counts} (504: stopped "
        f"by the {timeout_seconds} s timeout; 429: too_many_queries)"
    )
    return _results(kind, idle_health, busy_health, idle_config, busy_config, note)


def _results(
    kind: str,
    idle_health: list[float],
    busy_health: list[float],
    idle_config: list[float],
    busy_config: list[float],
    note: str,
) -> list[Result]:
    ms: Callable[[float], float] = lambda s: s * 1000  # noqa: E731
    return [
        Result(
            f"GET /healthz p50, {SESSIONS} sessions' queries {kind}",
            ms(median(busy_health)),
            "ms",
            "GET /healthz p50, idle server",
            ms(median(idle_health)),
            "answers (the issue: 24.5 s under 45 sessions)",
            note=note,
        ),
        Result(
            f"GET /healthz p99, {SESSIONS} sessions' queries {kind}",
            ms(percentile(busy_health, 0.99)),
            "ms",
            "GET /healthz p99, idle server",
            ms(percentile(idle_health, 0.99)),
            "report",
        ),
        Result(
            f"GET /api/admin/server-config p50, {SESSIONS} queries {kind}",
            ms(median(busy_config)),
            "ms",
            "the same call p50, idle server",
            ms(median(idle_config)),
            "answers (the issue: ~30 s under 85 sessions)",
            note=f"p99 {ms(percentile(busy_config, 0.99)):.2f} ms vs idle "
            f"{ms(percentile(idle_config, 0.99)):.2f} ms",
        ),
    ]


def run(quick: bool = False) -> list[Result]:
    n = 100 if quick else 400
    cpu_n = 60 if quick else 100  # each probe waits for a core among 100 busy threads
    timeout = 30 if quick else 60
    return [
        *_held(n),
        *_cpu_bound(cpu_n, timeout, CAPS),
        *_cpu_bound(cpu_n, timeout, None),
    ]


if __name__ == "__main__":
    started = time.perf_counter()
    for result in run(quick=True):
        print(result)
    print(f"{time.perf_counter() - started:.1f} s")
