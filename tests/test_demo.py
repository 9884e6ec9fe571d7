"""The demo: deterministic data, idempotent wiring, and ``agnes demo`` end to end."""

from __future__ import annotations

import hashlib
import itertools
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


def monthly_active_users(root: Path) -> list[int]:
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT date_trunc('month', event_date) AS month, count(DISTINCT customer_id) "
        "FROM web_sessions GROUP BY 1 ORDER BY 1"
    ).fetchall()
    con.close()
    return [int(n) for _, n in rows]


def test_monthly_active_users_vary_and_stay_below_the_customer_base(tiny_demo: Path) -> None:
    con = duckdb.connect()
    customers = con.execute(f"SELECT count(*) FROM '{tiny_demo}/files/customers.csv'").fetchone()
    assert customers is not None
    active = monthly_active_users(tiny_demo)
    assert len(active) >= 24  # the sessions span years of months
    assert max(active) < customers[0], (active, customers)
    changes = sum(a != b for a, b in itertools.pairwise(active))
    assert changes >= len(active) // 2, f"active users barely change month to month: {active}"
    assert sum(active[:6]) < sum(active[-6:]), f"the active base does not grow: {active}"

    warehouse = duckdb.connect(str(tiny_demo / "warehouse.duckdb"), read_only=True)
    churned, seen = warehouse.execute(
        """
        WITH last_seen AS (
            SELECT customer_id, max(event_date) AS last_day FROM web_sessions
            WHERE customer_id IS NOT NULL GROUP BY 1
        )
        SELECT count(*) FILTER (last_day < (SELECT max(event_date) FROM web_sessions)
                                           - INTERVAL 6 MONTH),
               count(*)
        FROM last_seen
        """
    ).fetchone() or (0, 0)
    warehouse.close()
    assert 0 < churned < seen, "some customers stop using the web app, most do not"


def test_signed_in_sessions_orders_and_tickets_follow_the_customers(tiny_demo: Path) -> None:
    files = tiny_demo / "files"
    con = duckdb.connect()
    con.execute(f"ATTACH '{tiny_demo / 'warehouse.duckdb'}' AS w (READ_ONLY)")
    con.execute(f"CREATE VIEW customers AS FROM '{files}/customers.csv'")
    sessions = con.execute(
        """
        SELECT count(*) FILTER (c.customer_id IS NULL),
               count(*) FILTER (s.event_date < c.signup_date),
               count(*) FILTER (s.country_code <> c.country_code),
               count(*)
        FROM w.web_sessions s LEFT JOIN customers c USING (customer_id)
        WHERE s.customer_id IS NOT NULL
        """
    ).fetchone()
    assert sessions is not None and sessions[:3] == (0, 0, 0) and sessions[3] > 0
    early = con.execute(
        f"""
        SELECT (SELECT count(*) FROM '{files}/orders.parquet' o JOIN customers c USING (customer_id)
                WHERE o.order_date < c.signup_date),
               (SELECT count(*) FROM read_json('{files}/support_tickets.ndjson') t
                JOIN customers c USING (customer_id) WHERE t.created_at < c.signup_date)
        """
    ).fetchone()
    assert early == (0, 0), "no order or ticket before its customer signed up"
    last_signup, last_order = con.execute(
        f"SELECT (SELECT max(signup_date) FROM customers), "
        f"(SELECT max(order_date) FROM '{files}/orders.parquet')"
    ).fetchone() or (None, None)
    assert last_signup is not None and last_order is not None
    assert (last_order - last_signup).days < 183, "customers keep signing up until the end"


def test_starter_metrics_answer_non_trivially_on_the_demo(demo_server) -> None:
    with demo_server.client("analyst") as analyst:
        customers = analyst.post("/api/query", json={"sql": "SELECT count(*) FROM customers"})
        total = customers.json()["rows"][0][0]
        active = analyst.post("/api/metrics/product/active_users/query", json={"grain": "month"})
        assert active.status_code == 200, active.text
        monthly = [row[-1] for row in active.json()["rows"]]
        assert len(monthly) >= 24 and len(set(monthly)) > 1, monthly
        assert max(monthly) < total, (monthly, total)
        # every starter metric over time gives an answer that changes over time
        for metric in analyst.get("/api/metrics").json()["metrics"]:
            detail = analyst.get(f"/api/metrics/{metric['id']}").json()
            if detail.get("grain") is None:
                continue
            answer = analyst.post(f"/api/metrics/{metric['id']}/query", json={"grain": "quarter"})
            assert answer.status_code == 200, (metric["id"], answer.text)
            values = [row[-1] for row in answer.json()["rows"]]
            assert len(set(values)) > 1, (metric["id"], values)


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
        # The sample plugin marketplace synced, its first plugin granted to the Analysts.
        assert f"claude plugin marketplace add {base[1]}/marketplace.git" in banner
        assert "plugins granted to you (agnes-analyst)" in banner
        assert "; cannot see support_tickets)" in banner  # as the demo's grants are
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
            grant = client.post(  # what the README's admin steps do; the next banner says so
                "/api/admin/grants",
                headers={"Authorization": f"Bearer {admin_token[1]}"},
                json={
                    "group": "Analysts",
                    "resource_type": "table",
                    "resource_id": "support_tickets",
                },
            )
            assert grant.status_code == 201, grant.text
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
        assert "cannot see" not in banner and "may read every table" in banner
    finally:
        process.send_signal(signal.SIGTERM)  # how a service manager stops it
        assert process.wait(timeout=30) == 0
    assert "Traceback" not in stderr.read_text()


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_a_taken_port_is_said_before_anything_is_written(tmp_path: Path, command: str) -> None:
    """The port is checked before the demo data is generated (~30 s at full scale), and
    before `agnes serve` opens the store: `serve` wrote the store and a first admin (and
    its token) and then refused. A taken port is said at once, and nothing is written."""
    import socket

    from cli import exit_codes

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        AGNES_CONFIG_HOME=str(tmp_path / "config"),
    )
    data_dir = tmp_path / "agnes-data"
    argv = [command, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    argv += ["--scale", str(TINY)] if command == "demo" else []
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        taken.close()
    assert result.returncode == exit_codes.FAILURE, result.stderr
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    assert "Generating" not in result.stdout and not data_dir.exists()


def test_ctrl_c_while_the_demo_data_is_generated_is_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DuckDB, generating the data on the main thread, stops for Ctrl-C itself and raises
    `RuntimeError: Query interrupted`: `agnes demo` printed its traceback and exited 1."""
    from agnes_sync.demo import generator
    from cli import exit_codes
    from cli.main import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(generator, "ensure", interrupted)
    code = main(["demo", "--data-dir", str(tmp_path / "data"), "--port", "0"])
    assert code == exit_codes.INTERRUPTED and capsys.readouterr().err.endswith("interrupted\n")
