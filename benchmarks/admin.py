"""The admin app: first paint of a page in Chromium with 1,000 registered tables and 100k
audit rows, `agnes serve` start to ready (and to the admin app ready), and the server's
memory per open admin session.

- Paint: from navigation until the page's websocket is open and a Tabulator row is on
  screen, p50/p95 over the loads; baseline: the plain-HTML ``/me`` page, same browser.
- Start: process start until ``/healthz`` answers; then until ``/static/js/bokeh.min.js``
  answers (the admin gate holds it until Panel is mounted, so this is "admin ready").
- Memory: the server's RSS after opening N admin sessions, minus before, divided by N.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import Result, agnes_process, median, percentile, wait_ok

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WS_OPEN = "Websocket connection 0 is now open"
PAGE = "/admin/tables"


@dataclass
class Started:
    process: subprocess.Popen[str]
    base_url: str
    token: str
    healthy_s: float
    admin_ready_s: float


def prepare(data_dir: Path, tables: int, audit_rows: int) -> None:
    """A data dir with ``tables`` registered sample tables and ``audit_rows`` audit rows."""
    from agnes_mcp.services import Services
    from agnes_mcp.settings import load_settings
    from agnes_mcp.store.audit import AuditEntry
    from agnes_sync.table_spec import TableSpec

    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "instance.yaml").write_text("sources:\n  sample:\n    connector: sample\n")
    services = Services.open(load_settings(data_dir=data_dir))
    try:
        for i in range(tables):
            services.registry.add(TableSpec(id=f"t{i:04d}", source_type="sample"))
        now = datetime.now(UTC)
        batch = [
            AuditEntry(
                at=now - timedelta(seconds=i),
                user_id=None,
                action="query",
                result="ok",
                resource=f"t{i % tables:04d}",
                params={"sql": f"SELECT * FROM t{i % tables:04d}", "bytes_scanned": 1000 + i},
                duration_ms=5.0,
            )
            for i in range(audit_rows)
        ]
        for start in range(0, len(batch), 10_000):
            services.audit_log.add_many(batch[start : start + 10_000])
    finally:
        services.close()


WITHOUT_ADMIN = (
    "import sys, agnes_mcp.api.app as app; app.install_web_apps = lambda *a: None; "
    "from cli.main import main; sys.exit(main(sys.argv[1:]))"
)


@contextmanager
def serve(data_dir: Path, *, admin: bool = True) -> Iterator[Started]:
    """`agnes serve` in a subprocess (``admin=False``: with the web apps not installed)."""
    entry = ("-m", "cli.main") if admin else ("-c", WITHOUT_ADMIN)
    started = time.perf_counter()
    with agnes_process(data_dir, "serve", entry=entry) as (process, url):
        deadline = time.monotonic() + 120
        wait_ok(f"{url}/healthz", deadline)
        healthy = time.perf_counter() - started
        if admin:
            wait_ok(f"{url}/static/js/bokeh.min.js", deadline)
        admin_ready = time.perf_counter() - started
        token = (data_dir / "state" / "bootstrap-token").read_text().strip()
        yield Started(process, url, token, healthy, admin_ready)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def sign_in(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/auth/login?next=/me")
    page.locator("input[name=token]").fill(token)
    with page.expect_navigation():
        page.locator("form:has(input[name=token]) [type=submit]").click()


def paint(page: Any, url: str) -> float:
    """Seconds from navigation to the websocket open and a table row on screen."""
    started = time.perf_counter()
    with page.expect_console_message(lambda m: WS_OPEN in m.text, timeout=60_000):
        page.goto(url, wait_until="commit")
    page.locator(".tabulator-row").first.wait_for(timeout=60_000)
    return time.perf_counter() - started


def plain_paint(page: Any, url: str) -> float:
    started = time.perf_counter()
    page.goto(url, wait_until="load")
    return time.perf_counter() - started


def run(quick: bool = False) -> list[Result]:
    if not shutil.which(CHROMIUM):
        print(f"admin: skipped (no Chromium at {CHROMIUM})")
        return []
    from playwright.sync_api import sync_playwright

    loads = 5 if quick else 10
    sessions = 5 if quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        prepare(data_dir, tables=1000, audit_rows=20_000 if quick else 100_000)
        bare = []
        for _ in range(2 if quick else 3):
            with serve(data_dir, admin=False) as plain_server:
                bare.append(plain_server.healthy_s)
        with serve(data_dir) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                sign_in(page, server.base_url, server.token)
                paint(page, server.base_url + PAGE)  # warm-up: first session, caches
                page.goto("about:blank")
                before = rss_bytes(server.process.pid)
                pages = [context.new_page() for _ in range(sessions)]
                for one in pages:
                    paint(one, server.base_url + PAGE)
                after = rss_bytes(server.process.pid)
                for one in pages:
                    one.close()
                plain_paint(page, server.base_url + "/me")
                admin = [paint(page, server.base_url + PAGE) for _ in range(loads)]
                plain = [plain_paint(page, server.base_url + "/me") for _ in range(loads)]
                overview = [paint(page, server.base_url + "/admin") for _ in range(loads)]
            finally:
                browser.close()
    per_session = (after - before) / sessions
    return [
        Result(
            f"first paint {PAGE}, 1,000 tables (p95)",
            percentile(admin, 0.95) * 1000,
            "ms",
            "plain HTML /me (p95)",
            percentile(plain, 0.95) * 1000,
            "p95 <= 1000 ms",
            note=f"p50 {median(admin) * 1000:.0f} ms over {loads} loads",
        ),
        Result(
            "first paint /admin (overview) (p95)",
            percentile(overview, 0.95) * 1000,
            "ms",
            "plain HTML /me (p95)",
            percentile(plain, 0.95) * 1000,
            "p95 <= 1000 ms",
            note=f"p50 {median(overview) * 1000:.0f} ms over {loads} loads",
        ),
        Result(
            "agnes serve: start to /healthz, admin app installed",
            server.healthy_s * 1000,
            "ms",
            "start to /healthz, no web apps (median)",
            median(bare) * 1000,
            "ratio ~1: Panel is imported in the background",
        ),
        Result(
            "agnes serve: start to admin app ready",
            server.admin_ready_s * 1000,
            "ms",
            "start to /healthz, same run",
            server.healthy_s * 1000,
            "Panel ready a few seconds after the API",
        ),
        Result(
            "server RSS per open admin session",
            per_session / 2**20,
            "MB",
            "server RSS, admin app ready",
            before / 2**20,
            "small vs the server's own footprint",
            note=f"{sessions} sessions on {PAGE}",
        ),
    ]
