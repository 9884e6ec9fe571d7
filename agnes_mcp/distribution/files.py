"""Which file a download asks for, after the checks: the caller is granted the table and
the table is distributed (local or materialized, not server-only)."""

from __future__ import annotations

from pathlib import Path

from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.errors import InvalidRequest, NotFound, PermissionDenied
from agnes_mcp.rails.tables import CatalogFile, VersionedCatalog
from agnes_mcp.resource_types import ResourceType


class NotDistributed(PermissionDenied):
    code = "table_not_distributed"
    default_hint = "Query it on the server instead (query_remote, or query for server-only tables)."


class DataNotFound(NotFound):
    code = "data_not_found"
    default_hint = "Fetch the manifest again (agnes pull): the table or its files changed."


def resolve(
    access: AccessControl,
    catalog: VersionedCatalog,
    principal: Principal,
    table_id: str,
    part: str | None,
) -> CatalogFile:
    access.require_data_scope(principal)
    table = catalog.tables.get(table_id)
    # Not granted reads as not there, as in the catalog: nothing to learn from a refusal.
    if table is None or not access.can_access(principal, ResourceType.TABLE, table_id):
        raise DataNotFound(f"There is no table '{table_id}' you may read.")
    if table.is_remote or table.server_only:
        raise NotDistributed(f"'{table_id}' is not distributed to workspaces ({table.query_mode}).")
    if part is None:
        if len(table.parts) != 1:
            raise InvalidRequest(
                f"'{table_id}' has {len(table.parts)} files: name one with ?part=<path>.",
                hint="The manifest lists each file's path.",
            )
        chosen = table.parts[0]
    else:
        chosen = next((f for f in table.parts if f.relative == part), None)  # type: ignore[assignment]
        if chosen is None:
            raise DataNotFound(f"'{table_id}' has no file '{part}'.")
    if not Path(chosen.path).is_file():
        raise DataNotFound(f"The file of '{table_id}' is being replaced; try again.")
    return chosen
