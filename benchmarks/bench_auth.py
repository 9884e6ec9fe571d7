"""Auth on the hot path: an authenticated call against the unauthenticated health check,
and latency after thousands of uses of one token (the old system slowed from 18 ms to 2 s
after ~3,800 requests on one token because every request wrote last-used to the DB)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx

from benchmarks.harness import Result, agnes_server, median, percentile, time_calls


def run(quick: bool = False) -> list[Result]:
    n = 300 if quick else 1000
    uses = 1500 if quick else 5000
    with tempfile.TemporaryDirectory() as tmp, agnes_server(Path(tmp) / "data") as server:
        with httpx.Client(base_url=server.base_url) as anonymous:
            health = time_calls(lambda: anonymous.get("/healthz"), n)
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        with httpx.Client(base_url=server.base_url, headers=headers) as client:
            whoami = time_calls(lambda: client.get("/api/whoami").raise_for_status(), n)
            repeated = time_calls(
                lambda: client.get("/api/whoami").raise_for_status(), uses, warmup=0
            )
    window = max(100, uses // 10)
    first, last = median(repeated[:window]), median(repeated[-window:])
    return [
        Result(
            "GET /api/whoami, bearer token (p50)",
            median(whoami) * 1000,
            "ms",
            "GET /healthz, no auth (p50)",
            median(health) * 1000,
            "overhead of auth + RBAC lookup small vs 64 ms old server overhead",
            note=f"p95 {percentile(whoami, 0.95) * 1000:.2f} ms",
        ),
        Result(
            f"whoami p50, last {window} of {uses} uses of one token",
            last * 1000,
            "ms",
            f"p50 of the first {window} uses",
            first * 1000,
            "ratio ~1.0 (no slowdown with use count)",
        ),
    ]
