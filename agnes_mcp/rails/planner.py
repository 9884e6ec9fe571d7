"""Resolving a parsed query's tables against the catalog, the caller's grants and query modes.

- ``local``: tables the server holds (local, materialized). A remote table is refused with
  ``remote_table_needs_snapshot`` and a ready ``query_remote`` / ``snapshot_create``.
- ``remote``: tables of one warehouse, named by their id or by their warehouse path; a
  path must belong to a registered table (``path_not_registered``) and is then checked
  against that table's grant like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlglot import exp

from agnes_mcp.rails.engine import RemoteEngine, engine_class
from agnes_mcp.rails.policy import ParsedQuery, TableRef, real_table_nodes, table_ref
from agnes_mcp.rails.refusals import (
    LocalTableInRemoteQuery,
    MixedEngines,
    PathNotRegistered,
    RemoteTableNeedsSnapshot,
    TableNotFound,
    name_ambiguous,
    next_step,
)
from agnes_mcp.rails.tables import CatalogTable, VersionedCatalog
from agnes_sync.suggest import did_you_mean, suggestions


@dataclass
class Plan:
    mode: str  # local | remote
    tables: list[CatalogTable] = field(default_factory=list)
    source: str | None = None  # the warehouse of a remote plan


class TableAccess(Protocol):
    """What the rails ask of access control, for one caller (the server's RBAC bound to a
    principal, or a workspace's files: everything on disk was granted when pulled)."""

    def granted_tables(self) -> frozenset[str] | None:
        """Ids of the tables the caller may read; None means all."""

    def can_read(self, table_id: str) -> bool: ...


def _extra(
    ref: TableRef,
    snapshot: VersionedCatalog,
    access: TableAccess,
    extra: Mapping[str, CatalogTable] | None,
) -> CatalogTable | None:
    """The caller's own table ``ref`` names, if any. A table of the catalog the caller may
    read under the same name (registered after the snapshot was taken) makes the name
    ambiguous: refused, never resolved one way here and another elsewhere."""
    if not extra or ref.qualified:
        return None
    own = extra.get(ref.name)
    if own is None:
        return None
    if ref.name in snapshot.tables and access.can_read(ref.name):
        raise name_ambiguous(ref.name, own.query_mode, own.source)
    return own


def _visible(access: TableAccess, catalog: VersionedCatalog) -> list[str]:
    granted = access.granted_tables()
    return sorted(t for t in catalog.tables if granted is None or t in granted)


def _lookup(
    ref: TableRef,
    snapshot: VersionedCatalog,
    access: TableAccess,
) -> CatalogTable:
    # A table the caller may not read is answered as one that is not there: the catalog
    # does not list it, so no other answer may tell that it exists.
    if ref.qualified:
        table = snapshot.by_remote_path(tuple(p for p in (ref.catalog, ref.db, ref.name) if p))
        if table is None or not access.can_read(table.id):
            visible = _visible(access, snapshot)
            raise PathNotRegistered(
                f"There is no table '{ref.path}' you may read: a name with a schema or "
                "catalog must spell the warehouse path of a table you may read.",
                hint=f"{did_you_mean(ref.name, visible, n=3)}List the tables you may use "
                "with the catalog tool (a table's id needs no schema). A table none of your "
                "groups is granted is not among them: ask an admin for it.",
                next=next_step("catalog", "agnes catalog", search=ref.name),
                details={"table": ref.path, "suggestions": suggestions(ref.name, visible, n=3)},
            )
        return table
    found = snapshot.tables.get(ref.name)
    if found is None or not access.can_read(found.id):
        raise table_not_found(ref.name, _visible(access, snapshot))
    return found


def table_not_found(name: str, visible: list[str]) -> TableNotFound:
    """The refusal for a table ``name`` that is not there, with the nearest ``visible``
    ones (the same words whichever tool and backend asked)."""
    return TableNotFound(
        f"There is no table '{name}' you may read.",
        hint=f"{did_you_mean(name, visible, n=3)}List the tables you may use with the "
        "catalog tool. A table none of your groups is granted is not among them: ask an "
        "admin for it.",
        next=next_step("catalog", "agnes catalog", search=name),
        details={"table": name, "suggestions": suggestions(name, visible, n=3)},
    )


def snapshot_call(table: CatalogTable) -> dict[str, object]:
    """A ready snapshot_create call for a remote table: a few columns, a recent slice."""
    where = None
    if table.partition_by:
        column = table.partition_by
        engine = engine_class(table.remote.engine) if table.remote is not None else RemoteEngine
        where = (
            engine.since_predicate(column, _week_before(table.partition_range[1]))
            if table.partition_range is not None
            else engine.recent_predicate(column, 7)
        )
    arguments: dict[str, object] = {
        "table": table.id,
        "select": ["<the columns you need>"],
        "name": f"{table.id}_sample",
    }
    if where:
        arguments["where"] = where
    return next_step(
        "snapshot_create",
        f"agnes snapshot create {table.id} --select <columns>"
        + (f' --where "{where}"' if where else "")
        + f" --as {table.id}_sample",
        **arguments,
    )


def _week_before(latest: str) -> str:
    """The day a week before ``latest`` (ISO date or timestamp): the suggested window
    follows the data, which may end long before today."""
    try:
        day = dt.date.fromisoformat(latest[:10])
    except ValueError:
        return latest
    return (day - dt.timedelta(days=7)).isoformat()


def plan_local(
    parsed: ParsedQuery,
    snapshot: VersionedCatalog,
    access: TableAccess,
    extra: Mapping[str, CatalogTable] | None = None,
) -> Plan:
    """Tables of a local query; ``extra`` are the caller's own tables (snapshots, kept
    results), found by unqualified name when no catalog table has it."""
    plan = Plan(mode="local")
    for ref in parsed.refs:
        own = _extra(ref, snapshot, access, extra)
        if own is not None:
            if own not in plan.tables:
                plan.tables.append(own)
            continue
        table = _lookup(ref, snapshot, access)
        if table.is_remote:
            raise RemoteTableNeedsSnapshot(
                f"'{table.id}' is a remote table: it is not scanned by a local query.",
                next={
                    "options": [
                        next_step(
                            "query_remote", f'agnes query --remote "{parsed.sql}"', sql=parsed.sql
                        ),
                        snapshot_call(table),
                    ]
                },
                details={"table": table.id},
            )
        if table not in plan.tables:
            plan.tables.append(table)
    return plan


def plan_remote(
    parsed: ParsedQuery,
    snapshot: VersionedCatalog,
    access: TableAccess,
    extra: Mapping[str, CatalogTable] | None = None,
) -> Plan:
    plan = Plan(mode="remote")
    for ref in parsed.refs:
        own = _extra(ref, snapshot, access, extra)
        if own is not None:
            raise LocalTableInRemoteQuery(
                f"'{own.id}' is your {own.query_mode}, held here; query it with query.",
                next=next_step("query", f'agnes query "{parsed.sql}"', sql=parsed.sql),
            )
        table = _lookup(ref, snapshot, access)
        if not table.is_remote or table.remote is None:
            raise LocalTableInRemoteQuery(
                f"'{table.id}' is held by the server ({table.query_mode}); query it with query.",
                next=next_step("query", f'agnes query "{parsed.sql}"', sql=parsed.sql),
            )
        if plan.source is None:
            plan.source = table.source
        elif plan.source != table.source:
            raise MixedEngines(
                f"The query reads two warehouses ({plan.source}, {table.source}).",
                next=snapshot_call(table),
            )
        if table not in plan.tables:
            plan.tables.append(table)
    return plan


NAME_PARTS = frozenset({"this", "db", "catalog"})


def _whole_path(written: tuple[str, ...], table: CatalogTable) -> bool:
    """Whether ``written`` spells the table's whole warehouse path (behind the source's
    alias or not), which the warehouse resolves to that table alone. A shorter spelling
    the catalog also knows it by (``alias.table`` for ``alias.schema.table``) the
    warehouse resolves its own way (``alias.main.table``)."""
    assert table.remote is not None
    parts = table.remote.parts
    spelled = tuple(p.lower() for p in written)
    return spelled in (parts, (table.remote.alias.lower(), *parts))


def rewrite_remote_names(parsed: ParsedQuery, catalog: VersionedCatalog) -> exp.Expression:
    """The query with every table id replaced by its warehouse path, spelled as the table's
    engine names it. Qualified names stay as written unless the engine wants canonical
    paths (BigQuery: ``project.dataset.table`` resolves whatever the job's default project,
    and the alias path means nothing to it). A name that refers to a CTE stays; one that
    reads the table is rewritten wherever it stands, even where a CTE of the same name is
    defined elsewhere in the query (else the warehouse would resolve it on its own, to
    whatever table it holds under that name). A qualified name that does not spell the
    table's whole path is rewritten too (:func:`_whole_path`)."""
    tree = parsed.tree.copy()
    for node in real_table_nodes(tree):  # the names the grants were checked on, no other
        # qualified as the grants read it: "main.<id>" is the table of that id (_lookup)
        qualified = table_ref(node).qualified
        path = tuple(p for p in (node.catalog, node.db, node.name) if p)
        table = catalog.by_remote_path(path) if qualified else catalog.tables.get(node.name.lower())
        if table is None or table.remote is None:
            continue
        engine = engine_class(table.remote.engine)
        if qualified and not engine.canonical_paths and _whole_path(path, table):
            continue
        parts = [p.strip('"`') for p in table.remote.remote_name.split(".")]
        replacement = engine.table_reference(parts)
        # Only the name changes: every clause written on the table (TABLESAMPLE, PIVOT,
        # UNPIVOT, FOR SYSTEM_TIME AS OF, hints...) goes with it, or the warehouse would
        # answer another question.
        for key, value in node.args.items():
            if key not in NAME_PARTS and value is not None:
                replacement.set(key, value)
        if replacement.args.get("alias") is None:
            replacement.set("alias", exp.TableAlias(this=exp.to_identifier(node.name)))
        node.replace(replacement)
    return tree
