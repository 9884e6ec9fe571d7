"""The demo: deterministic data, idempotent wiring, and ``agnes demo`` end to end."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from agnes_mcp.demo import (
    DEMO_TOKENS_FILE,
    NOT_GRANTED_TO_ANALYSTS,
    demo_tables,
    first_sync,
    prepare,
    with_demo_sources,
)
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_sync.demo.generator import FILE_OUTPUTS, DemoSizes, ensure, generate

TINY = 0.001


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(root: Path) -> dict[str, str]:
    """Hashes computed here, not read from the generator's own manifest."""
    hashes = {name: sha256(root / "files" / name) for name, _ in FILE_OUTPUTS.values()}
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    row = con.execute(
        "SELECT count(*), "
        "bit_xor(hash(session_id, event_date, country_code, customer_id, converted)) "
        "FROM web_sessions"
    ).fetchone()
    con.close()
    hashes["web_sessions"] = str(row)
    return hashes


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("demo") / "demo", scale=TINY).root


def test_same_seed_gives_the_same_bytes(tiny_demo: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", scale=TINY, threads=1)
    assert fingerprint(again.root) == fingerprint(tiny_demo)
    other = generate(tmp_path / "other", scale=TINY, seed=7)
    different = fingerprint(other.root)
    assert all(different[k] != v for k, v in fingerprint(tiny_demo).items())


def test_sizes_follow_the_scale(tiny_demo: Path) -> None:
    assert DemoSizes.for_scale(1.0).sessions >= 20_000_000
    assert DemoSizes.for_scale(1.0).orders == 1_000_000
    sizes = DemoSizes.for_scale(TINY)
    con = duckdb.connect()
    files = tiny_demo / "files"
    assert con.execute(f"SELECT count(*) FROM '{files}/orders.parquet'").fetchone() == (
        sizes.orders,
    )
    assert con.execute(f"SELECT count(*) FROM '{files}/customers.csv'").fetchone() == (
        sizes.customers,
    )
    with pytest.raises(ValueError, match="scale"):
        DemoSizes.for_scale(0)


def test_data_is_consistent(tiny_demo: Path) -> None:
    files = tiny_demo / "files"
    con = duckdb.connect()
    mismatched = con.execute(
        f"""
        SELECT count(*) FROM '{files}/orders.parquet' o
        JOIN (SELECT order_id, sum(quantity * unit_price * (1 - discount)) AS total
              FROM '{files}/order_items.parquet' GROUP BY 1) i USING (order_id)
        WHERE abs(o.total_amount - i.total) > 0.01
        """
    ).fetchone()
    assert mismatched == (0,)
    orphans = con.execute(
        f"SELECT count(*) FROM '{files}/orders.parquet' WHERE customer_id NOT IN "
        f"(SELECT customer_id FROM '{files}/customers.csv')"
    ).fetchone()
    assert orphans == (0,)
    tickets = con.execute(
        "SELECT count(*) FILTER (resolved_at < created_at), "
        "count(*) FILTER (status = 'open' AND resolved_at IS NOT NULL) "
        f"FROM read_json('{files}/support_tickets.ndjson')"
    ).fetchone()
    assert tickets == (0, 0)
    ends = con.execute(f"SELECT max(ended_at) FROM '{files}/subscriptions.csv'").fetchone()
    assert ends is not None and str(ends[0]) <= "2026-10-31"


def test_ensure_reuses_and_regenerates_on_change(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    _, generated = ensure(root, scale=TINY)
    assert generated
    marker = root / "files" / "orders.parquet"
    mtime = marker.stat().st_mtime_ns
    _, generated = ensure(root, scale=TINY)
    assert not generated and marker.stat().st_mtime_ns == mtime
    _, generated = ensure(root, scale=TINY * 2)
    assert generated
    assert not list(tmp_path.glob(".demo.*")), "no staging folders are left behind"


def test_prepare_syncs_is_idempotent_and_rbac_is_visible(settings, tiny_demo: Path) -> None:
    from agnes_sync.demo.generator import DemoData, read_manifest

    data = DemoData(tiny_demo, read_manifest(tiny_demo) or {})
    configured = with_demo_sources(settings, data)
    assert set(configured.sources) == {"files", "duckdb_warehouse"}
    assert (settings.data_dir / "instance.yaml").is_file()  # a later `agnes serve` finds them
    services = Services.open(configured)
    try:
        first = prepare(services)
        results = first_sync(services)
        assert sorted(r.table_id for r in results) == sorted(t.id for t in demo_tables())
        assert all(r.status == "ok" for r in results), [r.error for r in results]
        assert first_sync(services) == []  # nothing left to do on the next start

        path = services.settings.state_dir / DEMO_TOKENS_FILE
        assert (path.stat().st_mode & 0o777) == 0o600
        assert json.loads(path.read_text()) == {"admin": first.admin, "analyst": first.analyst}
        second = prepare(services)
        assert (second.admin, second.analyst) == (first.admin, first.analyst)
        assert len(services.users.all()) == 2 and len(services.registry.all()) == len(demo_tables())

        con = services.orchestrator.connect()
        modes = dict(con.execute("SELECT table_name, query_mode FROM _catalog").fetchall())
        orders = con.execute("SELECT count(*) FROM orders").fetchone()
        con.close()
        assert modes["web_sessions"] == "remote" and modes["web_sessions_daily"] == "materialized"
        assert orders == (DemoSizes.for_scale(TINY).orders,)

        admin = services.tokens.authenticate(first.admin)
        analyst = services.tokens.authenticate(first.analyst)
        assert admin.is_admin and not analyst.is_admin
        granted = services.access.granted(analyst, ResourceType.TABLE)
        all_tables = {t.id for t in services.registry.all()}
        assert (
            granted == all_tables - NOT_GRANTED_TO_ANALYSTS
            and all_tables >= NOT_GRANTED_TO_ANALYSTS
        )

        services.tokens.revoke(analyst.token_id or "")
        third = prepare(services)
        assert third.analyst != first.analyst  # a revoked demo token is replaced
        services.tokens.authenticate(third.analyst)
    finally:
        services.close()


def _read_banner(process: subprocess.Popen[str], timeout: float = 90) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(lines)
    raise AssertionError("no banner:\n" + "".join(lines))


def _start_demo(workdir: Path, stderr: Path) -> subprocess.Popen[str]:
    """`agnes demo` as the README runs it: from a working dir, default (relative) data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "demo", "--port", "0", "--scale", str(TINY)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        text=True,
        env=env,
    )


def _stop(process: subprocess.Popen[str]) -> int:
    """Ctrl-C as `uv run` delivers it: the same SIGINT twice, milliseconds apart."""
    process.send_signal(signal.SIGINT)
    time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_agnes_demo_end_to_end_and_second_start_reuses(tmp_path: Path) -> None:
    data_dir = tmp_path / "agnes-data"
    stderr = tmp_path / "stderr.txt"
    process = _start_demo(tmp_path, stderr)
    try:
        banner = _read_banner(process)
    finally:
        code = None if process.poll() is not None else "running"
    assert code == "running"
    try:
        assert "Generating the demo data" in banner
        base = re.search(r"MCP endpoint\s+(http://\S+)/mcp", banner)
        admin_token = re.search(r"Admin token\s+(agnes_\S+)", banner)
        analyst_token = re.search(r"Analyst token\s+(agnes_\S+)", banner)
        assert base and admin_token and analyst_token
        assert re.search(r"API\s+http://\S+/api", banner) and re.search(
            r"Admin app\s+http://\S+/admin", banner
        )
        saved = json.loads((data_dir / "state" / DEMO_TOKENS_FILE).read_text())
        assert saved == {"admin": admin_token[1], "analyst": analyst_token[1]}
        with httpx.Client(base_url=base[1], timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            me = client.get(
                "/api/whoami", headers={"Authorization": f"Bearer {analyst_token[1]}"}
            ).json()
            assert me["email"].startswith("analyst@") and "Analysts" in me["groups"]
            users = client.get(
                "/api/admin/users", headers={"Authorization": f"Bearer {admin_token[1]}"}
            )
            assert users.status_code == 200 and len(users.json()["users"]) == 2
            status = client.get(
                "/api/sync/status", headers={"Authorization": f"Bearer {admin_token[1]}"}
            ).json()
        assert status["problems"] == [] and status["conflicts"] == []
        assert len(status["tables"]) == 8 and {t["status"] for t in status["tables"]} == {"ok"}
        con = duckdb.connect(str(data_dir / "analytics" / "server.duckdb"), read_only=True)
        served = {r[0] for r in con.execute("SELECT table_name FROM _catalog").fetchall()}
        orders = con.execute("SELECT count(*) FROM orders").fetchone()
        con.close()
        assert len(served) == 8 and orders == (DemoSizes.for_scale(TINY).orders,)
    finally:
        assert _stop(process) == 0
    log = stderr.read_text()
    assert "Application startup complete" in log and "Traceback" not in log, log

    process = _start_demo(tmp_path, stderr)
    try:
        banner = _read_banner(process)
        assert "Generating the demo data" not in banner
        assert admin_token[1] in banner and analyst_token[1] in banner
    finally:
        process.send_signal(signal.SIGTERM)  # how a service manager stops it
        assert process.wait(timeout=30) == 0
    assert "Traceback" not in stderr.read_text()
