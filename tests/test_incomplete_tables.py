"""A table published with only part of its rows (a connector's first load split into parts,
stopped part way) says so, in the connector's words, wherever it is read: every query
answer reading it, the catalog, its schema, the manifest a workspace pulls and the
workspace's own answers. Its next whole publish clears it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from agnes_mcp.auth.principal import Principal
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.query.workspace_query import WorkspaceQuery
from agnes_mcp.services import Services
from agnes_sync.contract import ExtractWriter
from agnes_sync.table_spec import TableSpec
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import add_user

WHY = "its first load holds the rows imported before 2026-03-01 00:00 UTC; the next sync loads the rest."


def _publish(services: Services, *, incomplete: str | None) -> None:
    writer = ExtractWriter(services.settings.extracts_dir, "src")
    staged = writer.staging_file("events")
    duckdb.execute(f"COPY (SELECT range AS id FROM range(3)) TO '{staged}' (FORMAT parquet)")
    if incomplete is not None:
        writer.publishes_incomplete("events", incomplete)
    writer.publish_file("events", staged, description="Events")
    services.orchestrator.rebuild()


@pytest.fixture
def admin(services: Services) -> Iterator[Principal]:
    services.registry.add(TableSpec(id="events", source_type="src"))
    user = add_user(services, (ADMIN_GROUP_ID,))
    yield services.web_sessions.sign_in(user.id, "token")[0].principal


def _said(services: Services, admin: Principal) -> dict[str, object]:
    answer = services.query.run(admin, "SELECT count(*) AS n FROM events").answer()
    [entry] = [e for e in services.catalog_view.entries(admin) if e.id == "events"]
    text, _ = services.manifests.build(admin)
    return {
        "notes": answer.notes,
        "rows": answer.table.to_pylist(),
        "catalog": entry.incomplete,
        "schema": services.catalog_view.schema(admin, "events").notes,
        "manifest": WHY in text,
    }


def test_a_table_published_part_way_says_so_until_it_is_whole(
    services: Services, admin: Principal
) -> None:
    _publish(services, incomplete=WHY)
    note = f"events is incomplete: {WHY}"
    assert _said(services, admin) == {
        "notes": [note],
        "rows": [{"n": 3}],  # the rows are served: the answer says what they are
        "catalog": WHY,
        "schema": [note],
        "manifest": True,
    }
    _publish(services, incomplete=None)
    assert _said(services, admin) == {
        "notes": [],
        "rows": [{"n": 3}],
        "catalog": None,
        "schema": [],
        "manifest": False,
    }


def test_a_reason_is_one_printable_line_of_bounded_length(
    services: Services, admin: Principal
) -> None:
    """The connector's words are data: control characters cannot reach a terminal, and a
    runaway text is cut."""
    _publish(services, incomplete="a\x1b[2Jb\nc" + "x" * 2000)
    [entry] = [e for e in services.catalog_view.entries(admin) if e.id == "events"]
    assert entry.incomplete is not None
    assert entry.incomplete.startswith("a\\x1b[2Jb c") and len(entry.incomplete) == 500


def test_a_pulled_copy_of_a_table_says_it_was_not_whole(
    services: Services, admin: Principal, tmp_path: Path
) -> None:
    """The workspace keeps the manifest it pulled: its answers say what the server's did."""
    _publish(services, incomplete=WHY)
    paths = WorkspacePaths(tmp_path / "ws")
    paths.ensure()
    text, _ = services.manifests.build(admin)
    paths.manifest.write_text(text)
    [file] = services.query.catalog.current().tables["events"].files
    (paths.data / "events.parquet").write_bytes(Path(file).read_bytes())
    queries = WorkspaceQuery(paths)
    try:
        answer = queries.run("SELECT count(*) AS n FROM events", None).answer()
    finally:
        queries.close()
    assert answer.notes == [f"events is incomplete: {WHY}"]


def test_an_extract_written_before_incomplete_tables_existed_reads_and_publishes(
    services: Services, admin: Principal
) -> None:
    """Older extracts (and other programs writing the contract) have no ``_incomplete``."""
    _publish(services, incomplete=WHY)
    writer = ExtractWriter(services.settings.extracts_dir, "src")
    with duckdb.connect(str(writer.paths.db)) as con:
        con.execute("DROP TABLE _incomplete")
    services.orchestrator.rebuild()
    assert _said(services, admin)["notes"] == []
    _publish(services, incomplete=WHY)
    assert _said(services, admin)["catalog"] == WHY
