"""A data dir copied or restored to another path serves every table from where it is now.

The demo is built by a real ``agnes demo`` (its data and sources inside the data dir, as
the command lays them out), copied with ``shutil.copytree`` and served by a real
``agnes serve`` on the copy; every table is queried through the API, before and after the
original is deleted. Lower-level tests cover what relocation must not do: reach outside
an extract, touch the original, lose a view whose files are missing, or do any work on a
normal start.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from agnes_sync.contract import ExtractPaths, ExtractWriter, StagedPart
from agnes_sync.extract_reader import read_extract
from agnes_sync.orchestrator import Orchestrator
from agnes_sync.sql_text import quote_literal
from tests.server_process import announced_url, server_env

TABLES = (
    "customers",
    "products",
    "orders",
    "order_items",
    "subscriptions",
    "support_tickets",
    "web_sessions",
    "web_sessions_daily",
)


@dataclass
class Served:
    base_url: str
    log: Path

    def client(self, data_dir: Path) -> httpx.Client:
        tokens = json.loads((data_dir / "state" / "demo-tokens.json").read_text())
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {tokens['admin']}"},
            timeout=60,
        )


@contextmanager
def agnes(tmp_path: Path, *args: str) -> Iterator[Served]:
    """``agnes <args> --port 0`` in a subprocess, until it prints its URLs (it is then
    serving); stopped with SIGTERM, as an operator would."""
    env = server_env(tmp_path)
    log = tmp_path / f"agnes-{len(list(tmp_path.glob('agnes-*.log')))}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args, "--port", "0", "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        base_url = announced_url(process.stdout)
        assert base_url, f"agnes {args[0]} did not start: {log.read_text()}"
        yield Served(base_url, log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate()


def counts(served: Served, data_dir: Path) -> dict[str, int]:
    """Rows of every demo table, through the query API (local, materialized and remote)."""
    found = {}
    with served.client(data_dir) as client:
        for table in TABLES:
            response = client.post("/api/query", json={"sql": f"SELECT count(*) FROM {table}"})
            assert response.status_code == 200, (table, response.text)
            found[table] = response.json()["rows"][0][0]
        status = client.get("/api/sync/status").json()
    assert status["problems"] == [], status["problems"]
    return found


def absolute_paths(data_dir: Path, needle: str) -> list[str]:
    """Every view, catalog path and remote URL in the data dir's DuckDB files that names
    ``needle`` (a folder)."""
    found = []
    for db in [*data_dir.glob("extracts/*/extract.duckdb"), data_dir / "analytics/server.duckdb"]:
        con = duckdb.connect()
        con.execute(f"ATTACH {quote_literal(str(db))} AS x (READ_ONLY)")
        texts = con.execute(
            "SELECT sql FROM duckdb_views() WHERE database_name = 'x' AND NOT internal"
        ).fetchall()
        for table, column in (
            ("_files", "path"),
            ("_remote_attach", "url"),
            ("_remote_tables", "url"),
        ):
            if con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE database_name = 'x' "
                "AND table_name = ? AND column_name = ?",
                [table, column],
            ).fetchone() == (1,):
                texts += con.execute(f"SELECT {column} FROM x.{table}").fetchall()
        con.close()
        found += [f"{db.name}: {t}" for (t,) in texts if needle in t]
    return found


@pytest.mark.slow
def test_a_copied_demo_data_dir_serves_every_table_without_the_original(tmp_path: Path) -> None:
    original = tmp_path / "old-machine" / "agnes-data"
    with agnes(tmp_path, "demo", "--data-dir", str(original), "--scale", "0.002") as served:
        before = counts(served, original)
    assert all(n > 0 for n in before.values()), before

    copy = tmp_path / "new-machine" / "agnes-data"
    shutil.copytree(original, copy)
    untouched = {p: p.stat().st_mtime_ns for p in original.rglob("*") if p.is_file()}
    with agnes(tmp_path, "serve", "--data-dir", str(copy)) as served:
        assert counts(served, copy) == before
        assert absolute_paths(copy, str(original)) == []
        assert {p: p.stat().st_mtime_ns for p in untouched} == untouched  # the original as it was
        shutil.rmtree(original.parent)
        assert counts(served, copy) == before
        with served.client(copy) as client:
            synced = client.post("/api/sync/trigger", json={"wait": True}).json()["results"]
        assert {r["table_id"]: r["status"] for r in synced} == dict.fromkeys(TABLES, "ok")
        assert counts(served, copy) == before
    log = served.log.read_text()
    assert "moved" in log and str(original) in log and str(copy) in log, log

    extracts = {p: p.stat().st_mtime_ns for p in copy.glob("extracts/*/extract.duckdb*")}
    with agnes(tmp_path, "serve", "--data-dir", str(copy)) as served:  # a normal start
        assert {p: p.stat().st_mtime_ns for p in extracts} == extracts  # nothing re-pointed
        assert counts(served, copy) == before
    assert "moved" not in served.log.read_text()


# --- the relocation step on its own ------------------------------------------------------


def publish(data_dir: Path, source: str = "src") -> ExtractWriter:
    """An extract with a single-file table and a partitioned one, as connectors write it."""
    writer = ExtractWriter(data_dir / "extracts", source)
    staged = writer.staging_file("single")
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT range AS id FROM range(5)) TO {quote_literal(str(staged))} (FORMAT parquet)"
    )
    writer.publish_file("single", staged, description="one file")
    parts = {}
    for key in ("2026-01", "2026-02"):
        part = writer.staging_file(f"parts-{key}")
        con.execute(
            f"COPY (SELECT 1 AS id, '{key}' AS month) TO {quote_literal(str(part))} (FORMAT parquet)"
        )
        parts[key] = StagedPart(part, 1, key)
    con.close()
    writer.publish_parts("parted", parts, description="parts", partition_label="month")
    return writer


def rows(orchestrator: Orchestrator, table: str) -> int:
    con = orchestrator.connect()
    try:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def test_a_moved_extract_is_repointed_and_a_normal_start_touches_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    publish(old)
    Orchestrator(old).rebuild()
    shutil.copytree(old, new)
    shutil.rmtree(old)

    orchestrator = Orchestrator(new)
    with caplog.at_level(logging.INFO, logger="agnes.sync"):
        moved = orchestrator.relocate()
    assert moved is not None and moved.moved_from == [str(old.resolve())]
    assert moved.views == 2 and moved.problems == []
    assert any("moved" in r.getMessage() for r in caplog.records)
    assert (rows(orchestrator, "single"), rows(orchestrator, "parted")) == (5, 2)
    extract = read_extract(ExtractPaths.of(new.resolve() / "extracts", "src"), strict=True)
    assert set(extract.tables) == {"single", "parted"}
    assert absolute_paths(new, str(old)) == []

    analytics = orchestrator.analytics_path
    identity = (analytics.stat().st_ino, analytics.stat().st_mtime_ns)
    extract_db = new / "extracts" / "src" / "extract.duckdb"
    extract_identity = extract_db.stat().st_mtime_ns
    again = Orchestrator(new)
    assert again.relocate() is None  # not moved: nothing read but the recorded data dir
    assert (analytics.stat().st_ino, analytics.stat().st_mtime_ns) == identity
    assert extract_db.stat().st_mtime_ns == extract_identity


def test_relocation_never_points_a_view_outside_its_extract(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    writer = publish(old)
    other = publish(old, "other")
    escape = f"{old.resolve()}/extracts/src/data/../../other/data/single.parquet"
    foreign = str(other.paths.table_file("single"))
    with writer.connect() as con:
        con.execute(f"CREATE OR REPLACE VIEW single AS SELECT * FROM read_parquet('{escape}')")
        con.execute(f"CREATE OR REPLACE VIEW parted AS SELECT * FROM read_parquet('{foreign}')")
    Orchestrator(old).rebuild()
    shutil.copytree(old, new)
    shutil.rmtree(old)

    orchestrator = Orchestrator(new)
    moved = orchestrator.relocate()
    assert moved is not None
    extract = read_extract(ExtractPaths.of(new.resolve() / "extracts", "src"))
    assert extract.tables == {}  # neither view was made readable
    assert sorted(p.split(": ")[1].split(" ")[0] for p in extract.problems) == ["view", "view"]
    assert all(f", outside {extract.paths.data}" in p for p in extract.problems)
    assert set(orchestrator.problems()) >= set(extract.problems)
    assert rows(orchestrator, "single") == 5  # the other source's own table is served


def test_files_listed_outside_the_extract_are_a_problem(tmp_path: Path) -> None:
    writer = publish(tmp_path)
    secret = tmp_path / "secret.parquet"
    duckdb.connect().execute(f"COPY (SELECT 1 AS x) TO {quote_literal(str(secret))}")
    with writer.connect() as con:  # listed with its real size: only its place is wrong
        con.execute(
            "UPDATE _files SET path = ?, size_bytes = ? WHERE table_name = 'single'",
            [str(secret), secret.stat().st_size],
        )
    extract = read_extract(writer.paths)
    assert "single" not in extract.tables
    assert [p for p in extract.problems if "table 'single'" in p] == [
        f"extract 'src' ({writer.paths.db}), table 'single': file {secret} is listed in "
        f"_files but outside {writer.paths.data}"
    ]


def test_a_data_dir_from_before_relocation_is_checked_once(tmp_path: Path) -> None:
    publish(tmp_path)
    orchestrator = Orchestrator(tmp_path)
    orchestrator.rebuild()
    orchestrator.location_path.unlink(missing_ok=True)  # as written before it was recorded
    first = orchestrator.relocate()
    assert first is not None and first.moved_from == [] and first.views == 0
    assert rows(orchestrator, "single") == 5
    assert orchestrator.location_path.read_text().strip() == str(tmp_path.resolve())
    assert Orchestrator(tmp_path).relocate() is None


def test_a_new_data_dir_records_where_it_is(tmp_path: Path) -> None:
    orchestrator = Orchestrator(tmp_path)
    assert orchestrator.relocate() is None
    publish(tmp_path)
    orchestrator.rebuild()
    assert Orchestrator(tmp_path).relocate() is None


def test_a_view_whose_files_were_not_copied_is_left_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    publish(old)
    Orchestrator(old).rebuild()
    shutil.copytree(old, new, ignore=shutil.ignore_patterns("single.parquet"))

    orchestrator = Orchestrator(new)
    with caplog.at_level(logging.WARNING, logger="agnes.sync"):
        moved = orchestrator.relocate()
    assert moved is not None and moved.views == 1  # parted
    assert len(moved.problems) == 1 and "'single'" in moved.problems[0]
    assert any("single" in r.getMessage() for r in caplog.records)
    assert rows(orchestrator, "parted") == 2
    assert any("'single': view reads" in p for p in orchestrator.problems())
    assert (old / "extracts" / "src" / "data" / "single.parquet").is_file()  # old left alone

    shutil.copy2(old / "extracts/src/data/single.parquet", new / "extracts/src/data/")
    again = Orchestrator(new)
    retried = again.relocate()  # the next start tries again
    assert retried is not None and retried.views == 1 and retried.problems == []
    assert (rows(again, "single"), rows(again, "parted")) == (5, 2)
    assert again.problems() == [] and Orchestrator(new).relocate() is None


def test_absolute_file_paths_of_a_moved_extract_become_relative(tmp_path: Path) -> None:
    """A third-party writer may list its files by absolute path; after a move they are
    listed relative to the extract, as the contract has them."""
    old, new = tmp_path / "old", tmp_path / "new"
    writer = publish(old)
    with writer.connect() as con:
        con.execute("UPDATE _files SET path = ? || '/' || path", [str(writer.paths.root)])
    assert read_extract(writer.paths).valid
    shutil.copytree(old, new)
    shutil.rmtree(old)

    moved = Orchestrator(new).relocate()
    assert moved is not None and moved.files == 3
    extract = read_extract(ExtractPaths.of(new.resolve() / "extracts", "src"), strict=True)
    assert {str(f.path) for t in extract.tables.values() for f in t.files} == {
        str(new.resolve() / "extracts/src/data/single.parquet"),
        str(new.resolve() / "extracts/src/data/parted/month=2026-01/part-0.parquet"),
        str(new.resolve() / "extracts/src/data/parted/month=2026-02/part-0.parquet"),
    }


def test_an_extract_open_in_another_process_is_moved_at_the_next_start(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    publish(old)
    Orchestrator(old).rebuild()
    shutil.copytree(old, new)
    shutil.rmtree(old)
    extract_db = new / "extracts" / "src" / "extract.duckdb"
    holder = subprocess.Popen(  # the DuckDB CLI of an operator, say: it locks the file
        [sys.executable, "-c", HOLD, str(extract_db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        before = extract_db.read_bytes()
        blocked = Orchestrator(new).relocate()
        assert blocked is not None and blocked.views == 0
        assert len(blocked.problems) == 1 and "'src' was not re-pointed" in blocked.problems[0]
        assert extract_db.read_bytes() == before
    finally:
        holder.stdin.close()
        holder.wait()
    orchestrator = Orchestrator(new)
    moved = orchestrator.relocate()  # the next start
    assert moved is not None and moved.views == 2 and moved.problems == []
    assert (rows(orchestrator, "single"), rows(orchestrator, "parted")) == (5, 2)


HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
con.close()
"""
