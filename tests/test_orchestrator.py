"""The orchestrator: one analytics DB over every extract; conflicts reported; never half-built."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from agnes_sync.contract import ExtractWriter
from agnes_sync.orchestrator import Orchestrator


def publish(data_dir: Path, source: str, table: str, rows: int = 3) -> None:
    writer = ExtractWriter(data_dir / "extracts", source)
    staged = writer.staging_file(table)
    duckdb.sql(
        f"COPY (SELECT range AS id, '{source}' AS origin FROM range({rows})) TO '{staged}' (FORMAT parquet)"
    )
    writer.publish_file(table, staged, description=f"{table} from {source}")


def catalog(orchestrator: Orchestrator) -> dict[str, str]:
    con = orchestrator.connect()
    try:
        return dict(con.execute("SELECT table_name, source FROM _catalog").fetchall())
    finally:
        con.close()


def test_rebuild_exposes_every_table_as_a_view(tmp_path: Path, warehouse: Path) -> None:
    from agnes_sync.contract import RemoteAttach

    publish(tmp_path, "a", "orders", 5)
    publish(tmp_path, "b", "customers", 2)
    ExtractWriter(tmp_path / "extracts", "w").publish_remote(
        "events",
        attach=RemoteAttach("warehouse", "duckdb", str(warehouse)),
        remote_name='"main"."events"',
        description="",
        rows=3000,
        size_bytes=1,
        bind_view=True,
    )
    orchestrator = Orchestrator(tmp_path)
    report = orchestrator.rebuild()
    assert report.tables == 3 and report.sources == ["a", "b", "w"] and not report.problems
    con = orchestrator.connect()
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (5,)
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (2,)
    remote = con.execute("SELECT table_name, url FROM _remote_tables").fetchall()
    files = con.execute("SELECT table_name, count(*) FROM _files GROUP BY 1 ORDER BY 1").fetchall()
    views = {
        r[0]
        for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    con.close()
    assert remote == [("events", str(warehouse))]
    assert files == [("customers", 1), ("orders", 1)]
    assert views == {"orders", "customers"}  # remote tables get no view: they are queried remotely


def test_name_conflicts_keep_the_first_owner(tmp_path: Path) -> None:
    publish(tmp_path, "first", "orders")
    orchestrator = Orchestrator(tmp_path)
    orchestrator.rebuild()
    time.sleep(0.01)
    publish(tmp_path, "second", "orders")  # later, a second source offers the same name
    report = orchestrator.rebuild()
    assert [(c.table, c.kept_source, c.dropped_source) for c in report.conflicts] == [
        ("orders", "first", "second")
    ]
    assert catalog(orchestrator) == {"orders": "first"}
    publish(tmp_path, "first", "orders", 9)  # the owner keeps the name even after re-extracting
    orchestrator.rebuild()
    assert catalog(orchestrator) == {"orders": "first"}
    assert [c.dropped_source for c in orchestrator.conflicts()] == ["second"]


def test_a_broken_extract_is_reported_and_the_rest_served(tmp_path: Path) -> None:
    publish(tmp_path, "good", "fine")
    publish(tmp_path, "bad", "broken")
    (tmp_path / "extracts" / "bad" / "data" / "broken.parquet").write_bytes(b"garbage")
    orchestrator = Orchestrator(tmp_path)
    report = orchestrator.rebuild()
    assert catalog(orchestrator) == {"fine": "good"}
    assert any("broken" in p for p in report.problems)
    assert any("broken" in p for p in orchestrator.problems())


def test_a_view_that_does_not_bind_drops_only_that_table(tmp_path: Path) -> None:
    publish(tmp_path, "src", "ok")
    publish(tmp_path, "src", "unreadable")
    target = tmp_path / "extracts" / "src" / "data" / "unreadable.parquet"
    size = target.stat().st_size
    target.write_bytes(b"\0" * size)  # same size as recorded, but not parquet any more
    report = Orchestrator(tmp_path).rebuild()
    assert report.tables == 1
    assert any("unreadable" in p and "does not bind" in p for p in report.problems)


def test_rebuild_source_rereads_only_that_source(tmp_path: Path) -> None:
    publish(tmp_path, "a", "t1")
    publish(tmp_path, "b", "t2")
    orchestrator = Orchestrator(tmp_path)
    orchestrator.rebuild()
    publish(tmp_path, "a", "t3")
    report = orchestrator.rebuild_source("a")
    assert report.tables == 3 and catalog(orchestrator) == {"t1": "a", "t2": "b", "t3": "a"}


def test_readers_never_see_a_half_built_db(tmp_path: Path) -> None:
    for i in range(40):
        publish(tmp_path, f"s{i % 4}", f"t{i}")
    orchestrator = Orchestrator(tmp_path)
    orchestrator.rebuild()
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                con = duckdb.connect(str(orchestrator.analytics_path), read_only=True)
                tables = con.execute("SELECT count(*) FROM _catalog").fetchone()[0]
                views = con.execute(
                    "SELECT count(*) FROM duckdb_views() WHERE NOT internal"
                ).fetchone()[0]
                con.close()
                seen.append(tables)
                assert tables == views == 40
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for i in range(8):
        (orchestrator.rebuild if i % 2 else lambda: orchestrator.rebuild_source("s1"))()
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert len(seen) > 10


def test_concurrent_rebuilds_are_serialised(tmp_path: Path) -> None:
    for i in range(12):
        publish(tmp_path, f"s{i % 3}", f"t{i}")
    orchestrator = Orchestrator(tmp_path)
    reports = []
    threads = [
        threading.Thread(target=lambda s=s: reports.append(orchestrator.rebuild_source(s)))
        for s in ("s0", "s1", "s2", "s0")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == 4 and all(r.tables == 12 for r in reports)
    assert len(catalog(orchestrator)) == 12
    assert not list(orchestrator.analytics_path.parent.glob(".*"))  # no staging files left


@pytest.mark.parametrize("source", ["nothing-here"])
def test_empty_data_dir_builds_an_empty_catalog(tmp_path: Path, source: str) -> None:
    orchestrator = Orchestrator(tmp_path)
    assert orchestrator.rebuild().tables == 0
    assert catalog(orchestrator) == {}
