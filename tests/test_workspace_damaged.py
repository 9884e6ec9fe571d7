"""A pulled file damaged on disk: the refusal says what mends it in a workspace (a pull,
which checks every file against the server's hash), not "after its next sync"."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agnes_mcp.query.workspace_query import WorkspaceQuery
from agnes_mcp.rails.arrow_sources import TableUnavailable
from agnes_sync.workspace.layout import WorkspacePaths


def test_a_damaged_file_in_a_workspace_points_at_a_pull(tmp_path: Path) -> None:
    data = tmp_path / ".agnes" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"n": [1, 2, 3]}), data / "products.parquet")
    with (data / "products.parquet").open("ab") as damaged:
        damaged.write(b"garbage")
    query = WorkspaceQuery(WorkspacePaths(tmp_path))
    with pytest.raises(TableUnavailable) as refused:
        query.run("SELECT count(*) FROM products", None)
    assert "agnes pull" in (refused.value.hint or "") and "sync" not in (refused.value.hint or "")
    assert refused.value.next_step == {"tool": None, "arguments": {}, "cli": "agnes pull"}
