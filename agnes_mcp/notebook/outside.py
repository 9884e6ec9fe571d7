"""A notebook outside any workspace: the same workspace backend over a private folder in
the user's cache, whose tables are read through the server until they are pulled.

``connect(server_url=..., token=...)`` (or ``AGNES_SERVER_URL`` + ``AGNES_TOKEN``) from a
folder that is no workspace gets this backend. Its folder is
``$XDG_CACHE_HOME/agnes/notebooks/<digest of server and token>`` (default ``~/.cache``),
so snapshots and kept results persist between kernels. A query whose tables are all here
(snapshots, kept results, pulled tables) runs locally, like in a workspace; any other runs
on the server through the same rails (``POST /api/query``), so a notebook needs nothing
pulled to start. ``ws.pull()`` fills the folder, and from then on queries run locally.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import sqlglot
from sqlglot import exp

from agnes_mcp.mcp_server.tool_models import SnapshotInfo
from agnes_mcp.mcp_server.workspace_backend import (
    WorkspaceBackend,
    relayable,
    relayed_refusals,
)
from agnes_mcp.rails.refusals import SNAPSHOT_NAME_TAKEN_HINT, SnapshotInvalid
from agnes_mcp.rails.results import Answer
from agnes_mcp.rails.snapshot_spec import SnapshotSpec
from agnes_mcp.session_export.workspace_log import logged
from agnes_sync.snapshot_files import check_new_name


def cache_folder(server_url: str, token: str) -> Path:
    """The private workspace folder of one server and token."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = (Path(base) if base else Path.home() / ".cache") / "agnes" / "notebooks"
    digest = hashlib.sha256(f"{server_url}\n{token}".encode()).hexdigest()[:16]
    return root / digest


def tables_read(sql: str) -> set[str] | None:
    """The table names ``sql`` reads (CTEs left out), lower-cased as the rails and DuckDB
    match them (``FROM Recent``, ``FROM "RECENT"`` read the snapshot ``recent``), or None
    when it does not parse (the server then answers, with its own refusal)."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return None
    if tree is None:
        return None
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names = {t.name.lower() for t in tree.find_all(exp.Table) if t.name}
    return names - ctes


class OutsideWorkspaceBackend(WorkspaceBackend):
    """The workspace backend, with queries of tables not held here run by the server."""

    def _held_here(self, sql: str) -> bool:
        """Run here when every table is here whole, or when any is one of this folder's
        own snapshots or kept results (the server cannot see those; the local rules then
        say what to pull). A table some of whose parts are missing (a pull under way in
        another kernel, or one that failed) is read on the server, which has it whole."""
        names = tables_read(sql)
        if names is None:
            return False
        inventory = self.local.inventory()
        own = set(inventory.snapshots) | set(inventory.results)
        whole = {name for name, held in inventory.tables.items() if not held.missing_parts}
        return names <= (whole | own) or bool(names & own)

    def snapshot_create(
        self, spec: SnapshotSpec, name: str, ttl_seconds: int | None
    ) -> SnapshotInfo:
        name = check_new_name(name)  # lower-cased, as it will be kept: 'ORDERS' is 'orders'
        server_tables = {entry.id for entry in self.catalog(None, None).tables}
        if name in server_tables:
            raise SnapshotInvalid(
                f"'{name}' is the name of a table on the server; pick another name.",
                hint=SNAPSHOT_NAME_TAKEN_HINT,
            )
        return super().snapshot_create(spec, name, ttl_seconds)

    @logged("query", lambda sql, limit: {"sql": sql, "limit": limit})
    def query(self, sql: str, limit: int | None) -> Answer:
        if self._held_here(sql):
            return super().query(sql, limit)
        relayable(sql, limit)
        with relayed_refusals():
            data, meta = self.api.post_arrow(
                "/api/query", {"sql": sql, "limit": limit, "mode": "local"}
            )
        return Answer.from_wire(data, meta)
