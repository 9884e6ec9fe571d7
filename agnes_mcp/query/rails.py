"""Resolving a parsed query's tables against the catalog, the caller's grants and query modes.

- ``local``: tables the server holds (local, materialized). A remote table is refused with
  ``remote_table_needs_snapshot`` and a ready ``query_remote`` / ``snapshot_create``.
- ``remote``: tables of one warehouse, named by their id or by their warehouse path; a
  path must belong to a registered table (``path_not_registered``) and is then checked
  against that table's grant like any other.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sqlglot import exp

from agnes_mcp.auth.principal import Principal
from agnes_mcp.query.catalog import CatalogSnapshot, CatalogTable
from agnes_mcp.query.policy import ParsedQuery, TableRef
from agnes_mcp.query.refusals import (
    LocalTableInRemoteQuery,
    MixedEngines,
    PathNotRegistered,
    RemoteTableNeedsSnapshot,
    TableNotFound,
    TableNotGranted,
    next_step,
)
from agnes_mcp.resources import ResourceType


@dataclass
class Plan:
    mode: str  # local | remote
    tables: list[CatalogTable] = field(default_factory=list)
    source: str | None = None  # the warehouse of a remote plan


class TableAccess(Protocol):
    """What the rails ask of access control (the server's RBAC, or a workspace's files)."""

    def granted(
        self, principal: Principal, resource_type: ResourceType
    ) -> frozenset[str] | None: ...

    def can_access(
        self, principal: Principal, resource_type: ResourceType, resource_id: str
    ) -> bool: ...


def _extra(
    ref: TableRef, snapshot: CatalogSnapshot, extra: Mapping[str, CatalogTable] | None
) -> CatalogTable | None:
    if not extra or ref.qualified or ref.name in snapshot.tables:
        return None
    return extra.get(ref.name)


def _visible(access: TableAccess, principal: Principal, snapshot: CatalogSnapshot) -> list[str]:
    granted = access.granted(principal, ResourceType.TABLE)
    return sorted(t for t in snapshot.tables if granted is None or t in granted)


def _lookup(
    ref: TableRef,
    snapshot: CatalogSnapshot,
    principal: Principal,
    access: TableAccess,
) -> CatalogTable:
    if ref.qualified:
        table = snapshot.by_remote_path(tuple(p for p in (ref.catalog, ref.db, ref.name) if p))
        if table is None:
            raise PathNotRegistered(
                f"'{ref.path}' is not a registered table.",
                next=next_step("catalog", "agnes catalog", search=ref.name),
            )
    else:
        found = snapshot.tables.get(ref.name)
        if found is None:
            visible = _visible(access, principal, snapshot)
            close = difflib.get_close_matches(ref.name, visible, n=3, cutoff=0.6)
            suggestion = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise TableNotFound(
                f"There is no table '{ref.name}'.",
                hint=f"{suggestion}List the tables you may query with the catalog tool.",
                next=next_step("catalog", "agnes catalog", search=ref.name),
                details={"suggestions": close},
            )
        table = found
    if not access.can_access(principal, ResourceType.TABLE, table.id):
        raise TableNotGranted(
            f"You may not query '{table.id}'.",
            details={"table": table.id},
            next=next_step("catalog", "agnes catalog"),
        )
    return table


def snapshot_call(table: CatalogTable) -> dict[str, object]:
    """A ready snapshot_create call for a remote table: a few columns, a recent slice."""
    where = None
    if table.partition_by:
        column = table.partition_by
        where = (
            f"{column} >= DATE_SUB(CURRENT_DATE(), INTERVAL 7 DAY)"
            if table.remote is not None and table.remote.extension == "bigquery"
            else f"{column} >= current_date - INTERVAL 7 DAY"
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


def plan_local(
    parsed: ParsedQuery,
    snapshot: CatalogSnapshot,
    principal: Principal,
    access: TableAccess,
    extra: Mapping[str, CatalogTable] | None = None,
) -> Plan:
    """Tables of a local query; ``extra`` are the caller's own tables (snapshots, kept
    results), found by unqualified name when no catalog table has it."""
    plan = Plan(mode="local")
    for ref in parsed.refs:
        own = _extra(ref, snapshot, extra)
        if own is not None:
            if own not in plan.tables:
                plan.tables.append(own)
            continue
        table = _lookup(ref, snapshot, principal, access)
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
    snapshot: CatalogSnapshot,
    principal: Principal,
    access: TableAccess,
    extra: Mapping[str, CatalogTable] | None = None,
) -> Plan:
    plan = Plan(mode="remote")
    for ref in parsed.refs:
        own = _extra(ref, snapshot, extra)
        if own is not None:
            raise LocalTableInRemoteQuery(
                f"'{own.id}' is your {own.query_mode}, held here; query it with query.",
                next=next_step("query", f'agnes query "{parsed.sql}"', sql=parsed.sql),
            )
        table = _lookup(ref, snapshot, principal, access)
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


def rewrite_remote_names(parsed: ParsedQuery, snapshot: CatalogSnapshot) -> exp.Expression:
    """The query with every table id replaced by its warehouse path. DuckDB paths stay as
    written; BigQuery paths are made canonical (``project.dataset.table``) since only
    those resolve whatever the job's default project, and the alias path means nothing
    to BigQuery."""
    tree = parsed.tree.copy()
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    bigquery = parsed.dialect == "bigquery"
    for node in list(tree.find_all(exp.Table)):
        if not isinstance(node.this, exp.Identifier) or node.name.lower() in cte_names:
            continue
        qualified = bool(node.db or node.catalog)
        if qualified and not bigquery:
            continue
        path = tuple(p for p in (node.catalog, node.db, node.name) if p)
        table = (
            snapshot.by_remote_path(path) if qualified else snapshot.tables.get(node.name.lower())
        )
        if table is None or table.remote is None:
            continue
        parts = [p.strip('"`') for p in table.remote.remote_name.split(".")]
        replacement = exp.to_table(".".join(f'"{p}"' for p in parts), dialect="duckdb")
        if bigquery:
            replacement = exp.Table(
                this=exp.to_identifier(parts[-1]),
                db=exp.to_identifier(parts[-2]) if len(parts) > 1 else None,
                catalog=exp.to_identifier(parts[-3]) if len(parts) > 2 else None,
            )
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
        replacement.set("alias", alias)
        node.replace(replacement)
    return tree
