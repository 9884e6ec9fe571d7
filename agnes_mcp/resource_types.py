"""Kinds of resource a group can be granted, and how to find the ones that exist.

Adding a kind is one enum member plus one entry in ``_SPECS``: grants store the
type as text, so no migration is needed. A test checks that every member has a spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agnes_mcp.errors import UnknownResourceType
from agnes_sync.suggest import did_you_mean


class ResourceType(StrEnum):
    TABLE = "table"
    METRIC = "metric"
    MARKETPLACE_PLUGIN = "marketplace_plugin"


@dataclass(frozen=True)
class ResourceSpec:
    type: ResourceType
    label: str
    description: str
    # A query over the system store listing the ids that exist now; None when the kind
    # has no store yet (ids are then not checked). The grant repository runs it.
    existing_ids_sql: str | None
    # Admin group members may use every one without a grant. Not so for plugins: the
    # plugin feed is exactly what a user's groups were granted, the Admin group included.
    admin_uses_all: bool = True


_SPECS: dict[ResourceType, ResourceSpec] = {
    spec.type: spec
    for spec in (
        ResourceSpec(
            ResourceType.TABLE,
            "Table",
            "A registered table (any query mode): query it, pull it, snapshot it.",
            "SELECT id FROM table_registry",
        ),
        ResourceSpec(
            ResourceType.METRIC,
            "Metric",
            "A metric definition, by id 'category/name'.",
            "SELECT id FROM metric_definitions",
        ),
        ResourceSpec(
            ResourceType.MARKETPLACE_PLUGIN,
            "Marketplace plugin",
            "A Claude Code plugin from an admin-registered marketplace, by 'marketplace/plugin'.",
            "SELECT marketplace || '/' || name FROM marketplace_plugins",
            admin_uses_all=False,
        ),
    )
}


def spec_for(resource_type: ResourceType) -> ResourceSpec:
    return _SPECS[resource_type]


def all_specs() -> list[ResourceSpec]:
    return [_SPECS[t] for t in ResourceType]


def parse_resource_type(value: str) -> ResourceType:
    """The member named ``value``, or an error listing the kinds with a suggestion."""
    try:
        return ResourceType(value.strip().lower())
    except ValueError:
        names = [t.value for t in ResourceType]
        suggestion = did_you_mean(value, names)
        raise UnknownResourceType(
            f"'{value}' is not a resource type.",
            hint=f"{suggestion}Resource types: {', '.join(names)}.",
        ) from None
