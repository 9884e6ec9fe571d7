"""Role-based access: the two checks every route and tool uses.

- :meth:`AccessControl.require_admin` — admin API calls.
- :meth:`AccessControl.require_resource_access` — using one resource (a table, a metric, ...).

Members of the Admin group pass every resource check (but :meth:`granted_to_groups`,
for the plugin feed, has no such shortcut); everyone is in Everyone.
Grants are read from memory, refreshed when the store changes.
"""

from __future__ import annotations

from collections.abc import Callable

from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.errors import AdminRequired, PermissionDenied, ResourceNotGranted
from agnes_mcp.resource_types import ResourceType, spec_for
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.generation_cache import GenerationCache
from agnes_mcp.store.grants import GrantRepository


class AccessControl:
    def __init__(self, store: SystemStore, grants: GrantRepository) -> None:
        self._store = store
        self._grants = grants
        self._cache: GenerationCache[frozenset[str], frozenset[tuple[ResourceType, str]]] = (
            GenerationCache(store, 4096)
        )
        # Called with each principal that passes :meth:`require_admin` (e.g. the first
        # admin's bootstrap token retires once another admin acts).
        self.admin_listeners: list[Callable[[Principal], None]] = []

    def require_admin(self, principal: Principal) -> None:
        if not principal.in_admin_group:
            raise AdminRequired(f"{principal.email} is not an admin.")
        if not principal.has_scope(TokenScope.ADMIN):
            raise AdminRequired(
                "This token lacks the 'admin' scope.",
                hint="Use a token created with '--scope admin' for admin commands.",
            )
        for listener in self.admin_listeners:
            listener(principal)

    def require_data_scope(self, principal: Principal) -> None:
        if not principal.has_scope(TokenScope.DATA):
            raise PermissionDenied(
                "This token lacks the 'data' scope.",
                hint="Use a token created with '--scope data' to work with data.",
            )

    def granted(self, principal: Principal, resource_type: ResourceType) -> frozenset[str] | None:
        """Ids of ``resource_type`` the principal may use; ``None`` means all (Admin group)."""
        if principal.in_admin_group:
            return None
        return frozenset(
            rid for t, rid in self._resources(principal.group_ids) if t == resource_type
        )

    def granted_to_groups(
        self, principal: Principal, resource_type: ResourceType
    ) -> frozenset[str]:
        """Ids of ``resource_type`` granted to one of the principal's groups: no Admin
        shortcut (the plugin feed is exactly what the groups were granted)."""
        if not principal.has_scope(TokenScope.DATA):
            return frozenset()
        return frozenset(
            rid for t, rid in self._resources(principal.group_ids) if t == resource_type
        )

    def can_access(
        self, principal: Principal, resource_type: ResourceType, resource_id: str
    ) -> bool:
        if not principal.has_scope(TokenScope.DATA):
            return False
        if principal.in_admin_group:
            return True
        return (resource_type, resource_id) in self._resources(principal.group_ids)

    def tables_for(self, principal: Principal) -> CallerTables:
        """The caller's table grants in the shape the rails ask for."""
        return CallerTables(self, principal)

    def require_resource_access(
        self, principal: Principal, resource_type: ResourceType, resource_id: str
    ) -> None:
        self.require_data_scope(principal)
        if not self.can_access(principal, resource_type, resource_id):
            label = spec_for(resource_type).label.lower()
            raise ResourceNotGranted(
                f"{principal.email} may not use {label} '{resource_id}'.",
                details={"resource_type": resource_type.value, "resource_id": resource_id},
            )

    def _resources(self, group_ids: frozenset[str]) -> frozenset[tuple[ResourceType, str]]:
        return self._cache.get(group_ids, lambda: self._grants.resources_of(group_ids))


class CallerTables:
    """One caller's table grants, for :class:`agnes_mcp.rails.planner.TableAccess`."""

    def __init__(self, access: AccessControl, principal: Principal) -> None:
        self._access = access
        self._principal = principal

    def granted_tables(self) -> frozenset[str] | None:
        return self._access.granted(self._principal, ResourceType.TABLE)

    def can_read(self, table_id: str) -> bool:
        return self._access.can_access(self._principal, ResourceType.TABLE, table_id)
