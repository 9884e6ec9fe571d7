"""A workspace reads its inventory again only when the disk changed: ``disk_state`` sees
every change the inventory would (a file added, removed, replaced or rewritten in place,
at any depth; the manifest, snapshots, kept results), and not a download in progress.
Real parquet files, real DuckDB, a real workspace folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agnes_mcp.query import workspace_query
from agnes_mcp.query.workspace_query import WorkspaceQuery
from agnes_sync.workspace.inventory import Inventory, disk_state, read_inventory
from agnes_sync.workspace.layout import WorkspacePaths
from tests.parquet_files import write_ids


@pytest.fixture
def paths(tmp_path: Path) -> WorkspacePaths:
    paths = WorkspacePaths(tmp_path / "ws").ensure()
    write_ids(paths.data / "products.parquet", 7)
    write_ids(paths.data / "orders" / "month=2026-01" / "part-0.parquet", 10)
    write_ids(paths.data / "orders" / "month=2026-02" / "part-0.parquet", 20)
    paths.manifest.write_text(json.dumps({"tables": [{"id": "orders", "description": "one"}]}))
    return paths


def _replace(paths: WorkspacePaths) -> None:
    write_ids(paths.data / "staged.bin", 3)
    (paths.data / "staged.bin").replace(paths.data / "products.parquet")


def _bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


CHANGES: dict[str, Callable[[WorkspacePaths], object]] = {
    "a file added in a partition folder": lambda p: write_ids(
        p.data / "orders" / "month=2026-03" / "part-0.parquet", 5
    ),
    "a file rewritten in place": lambda p: _bump_mtime(
        p.data / "orders" / "month=2026-01" / "part-0.parquet"
    ),
    "a file replaced by a rename": _replace,
    "a file removed": lambda p: (p.data / "orders" / "month=2026-02" / "part-0.parquet").unlink(),
    "a table added": lambda p: write_ids(p.data / "customers.parquet", 4),
    "the manifest rewritten": lambda p: p.manifest.write_text(
        json.dumps({"tables": [{"id": "orders", "description": "two, longer"}]})
    ),
    "a result kept": lambda p: write_ids(p.results / "result_abc.parquet", 1),
    "a snapshot written": lambda p: (p.snapshots / "recent.json").write_text("{}"),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_disk_state_changes_with_what_the_inventory_reads(
    paths: WorkspacePaths, change: str
) -> None:
    before = disk_state(paths)
    assert disk_state(paths) == before  # nothing changed: the same answer
    CHANGES[change](paths)
    assert disk_state(paths) != before


def test_a_download_in_progress_changes_nothing(paths: WorkspacePaths) -> None:
    before, inventory = disk_state(paths), read_inventory(paths)
    write_ids(paths.data / ".customers.parquet.part", 4)
    write_ids(paths.data / "orders" / ".month=2026-03" / "part-0.parquet", 5)
    write_ids(paths.data / "orders" / "month=2026-01" / ".part-1.parquet.tmp", 5)
    assert disk_state(paths) == before
    assert read_inventory(paths) == inventory  # hidden: the inventory leaves it out too


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Inventory]]:
    """Every inventory the workspace's query path reads from disk."""
    done: list[Inventory] = []

    def counted(paths: WorkspacePaths) -> Inventory:
        done.append(read_inventory(paths))
        return done[-1]

    monkeypatch.setattr(workspace_query, "read_inventory", counted)
    yield done


def test_queries_read_the_inventory_again_only_after_a_change(
    paths: WorkspacePaths, reads: list[Inventory]
) -> None:
    local = WorkspaceQuery(paths)
    try:

        def count() -> int:
            return int(local.run("SELECT count(*) FROM orders", None).table.column(0)[0].as_py())

        assert count() == 30
        assert local.run("SELECT count(*) FROM products", None).table.num_rows == 1
        assert local.inventory().tables["orders"].description == "one"
        assert len(reads) == 1  # three calls, one read: nothing changed in between

        write_ids(paths.data / "orders" / "month=2026-03" / "part-0.parquet", 5)
        assert count() == 35  # the new part is seen at once
        assert len(reads) == 2

        write_ids(paths.data / "customers.parquet", 4)
        assert local.run("SELECT count(*) FROM customers", None).table.column(0)[0].as_py() == 4
        assert len(reads) == 3
        assert count() == 35
        assert len(reads) == 3
    finally:
        local.close()


def test_the_workspace_folder_is_its_owners_only(tmp_path: Path) -> None:
    """.agnes/ holds company data (the server's data dir is 0700): made 0700, and a folder
    other accounts could read (made by hand, by an older version) is tightened."""
    import stat

    from agnes_sync.workspace.layout import WorkspacePaths

    fresh = WorkspacePaths(tmp_path / "fresh").ensure()
    assert stat.S_IMODE(fresh.dot.stat().st_mode) == 0o700
    assert fresh.data.is_dir() and fresh.snapshots.is_dir() and fresh.results.is_dir()
    loose = WorkspacePaths(tmp_path / "loose")
    loose.dot.mkdir(parents=True)
    loose.dot.chmod(0o755)
    (loose.dot / "kept.txt").write_text("still here")
    loose.ensure()
    assert stat.S_IMODE(loose.dot.stat().st_mode) == 0o700
    assert (loose.dot / "kept.txt").read_text() == "still here"
