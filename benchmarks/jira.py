"""Jira webhook to queryable row, against ``agnes serve`` in its own process.

A local Jira (``tests/fake_jira.py``, REST v3 on a real socket) and the server with a
``jira`` source. Deliveries arrive at 20 a second, each about a new issue (created in the
fake Jira just before its ``jira:issue_created`` is posted, signed); a poller queries
``jira_issues`` through ``POST /api/query`` as fast as answers come and notes when each
issue's row first appears. Latency: from the moment the delivery is sent to that moment
(it includes the 202, the fetch of the issue from Jira, the shard rewrite, re-reading the
extract and the poll interval). p50 and p95 against the same-run baseline: one delivery at
a time on the idle server (the path's floor; the ratio is what the load costs). The note
also gives a new issue made queryable by ``POST /api/sync/trigger`` (what one waits for
without webhooks, at best: a sync started at once).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.harness import Result, agnes_server, median, percentile
from tests.fake_jira import EMAIL, TOKEN, FakeJiraServer, signed

RATE = 20  # deliveries per second
SECRET = "benchmark-webhook-secret"
SOURCE = "jira_bench"
TABLES = ("issues", "comments", "changelog", "issuelinks", "deleted_issues")


def _config(jira_url: str) -> str:
    return (
        "sources:\n"
        f"  {SOURCE}:\n"
        "    connector: jira\n"
        "    options:\n"
        f"      url: {jira_url}\n"
        f"      email: {EMAIL}\n"
        "      token_env: JIRA_BENCH_TOKEN\n"
        "      webhook_secret_env: JIRA_BENCH_SECRET\n"
        "      projects: [BENCH]\n"
    )


def _register(client: httpx.Client) -> None:
    for kind in TABLES:
        client.post(
            "/api/admin/register-table",
            params={"sync": "false"},
            json={"id": f"jira_{kind}", "source_type": SOURCE, "source_table": kind},
        ).raise_for_status()


class Poller(threading.Thread):
    """Queries the issue keys over and over; notes when each key is first seen."""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.changed = threading.Condition()

    def run(self) -> None:
        while not self.stop.is_set():
            answer = self.client.post("/api/query", json={"sql": "SELECT key FROM jira_issues"})
            now = time.perf_counter()
            if answer.status_code != 200:
                continue  # no rows published yet
            fresh = [r[0] for r in answer.json()["rows"] if r[0] not in self.seen]
            if fresh:
                with self.changed:
                    for key in fresh:
                        self.seen[key] = now
                    self.changed.notify_all()
        self.client.close()

    def wait_for(self, keys: set[str], timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: keys <= set(self.seen), timeout):
                raise RuntimeError(f"{len(keys - set(self.seen))} rows never became queryable")


def _deliver(server_url: str, jira: FakeJiraServer, sent: dict[str, float]) -> None:
    key = jira.fake.create_issue("BENCH", "Benchmark issue")
    body = jira.fake.webhook_body("jira:issue_created", key)
    headers = signed(body, SECRET, f"bench-{key}")
    sent[key] = time.perf_counter()
    answer = httpx.post(f"{server_url}/webhooks/jira/{SOURCE}", content=body, headers=headers)
    if answer.status_code != 202:
        raise RuntimeError(f"delivery refused: {answer.status_code} {answer.text[:200]}")


def _sync_latency(base_url: str, token: str, jira: FakeJiraServer, poller: Poller) -> float:
    """A new issue made queryable by a manual sync of the table, in seconds."""
    key = jira.fake.create_issue("BENCH", "Found by a sync")
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        done = c.post("/api/sync/trigger", json={"table_id": "jira_issues"}, timeout=120)
        done.raise_for_status()
    poller.wait_for({key}, 60)
    return poller.seen[key] - started


def run(quick: bool = False) -> list[Result]:
    deliveries = 60 if quick else 200
    os.environ["JIRA_BENCH_TOKEN"] = TOKEN
    os.environ["JIRA_BENCH_SECRET"] = SECRET
    with tempfile.TemporaryDirectory() as tmp, FakeJiraServer() as jira:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        (data_dir / "instance.yaml").write_text(_config(jira.url))
        with agnes_server(data_dir) as server:
            with httpx.Client(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {server.admin_token}"},
                timeout=60,
            ) as admin:
                _register(admin)
            poller = Poller(server.base_url, server.admin_token)
            poller.start()
            try:
                sent: dict[str, float] = {}
                _deliver(server.base_url, jira, sent)  # warm-up: the first publish
                poller.wait_for(set(sent), 60)
                syncs = [
                    _sync_latency(server.base_url, server.admin_token, jira, poller)
                    for _ in range(3 if quick else 5)
                ]
                idle = []
                for _ in range(5 if quick else 10):
                    sent.clear()
                    _deliver(server.base_url, jira, sent)
                    poller.wait_for(set(sent), 60)
                    idle.extend(poller.seen[k] - at for k, at in sent.items())
                sent.clear()
                started = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    for i in range(deliveries):
                        delay = started + i / RATE - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)  # the arrival schedule, not a wait for a result
                        pool.submit(_deliver, server.base_url, jira, sent)
                poller.wait_for(set(sent), 120)
                elapsed = time.perf_counter() - started
                fetches = len(jira.fake.calls("/rest/api/3/issue/"))
            finally:
                poller.stop.set()
                poller.join(30)
    latencies = [(poller.seen[k] - at) * 1000 for k, at in sent.items()]
    baseline = median(idle) * 1000
    note = (
        f"{deliveries} deliveries in {elapsed:.1f} s, each a new issue; {fetches} issue "
        f"fetches from Jira in all; a sync triggered at once: {median(syncs) * 1000:.0f} ms "
        "(median) until its new issue is queryable"
    )
    return [
        Result(
            f"Jira webhook -> queryable row at {RATE} deliveries/s (p50)",
            median(latencies),
            "ms",
            "one delivery at a time, idle server (p50)",
            baseline,
            "p50 < 500 ms",
            note,
        ),
        Result(
            f"Jira webhook -> queryable row at {RATE} deliveries/s (p95)",
            percentile(latencies, 0.95),
            "ms",
            "one delivery at a time, idle server (p50)",
            baseline,
            "p95 < 1000 ms",
            note,
        ),
    ]


if __name__ == "__main__":  # uv run python -m benchmarks.jira [--quick]
    import sys

    for result in run(quick="--quick" in sys.argv):
        print(f"{result.name}: {result.value:.1f} {result.unit} (baseline {result.baseline:.1f})")
        print(f"  {result.note}")
