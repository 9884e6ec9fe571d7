"""Finding connectors: the ``agnes.connectors`` entry-point group, built-ins included.

A third-party package adds a connector by declaring, in its own pyproject::

    [project.entry-points."agnes.connectors"]
    mysource = "my_package.connector:MySourceConnector"
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from agnes_sync.connector import Connector
from agnes_sync.errors import ConnectorNotFound
from agnes_sync.suggest import did_you_mean

GROUP = "agnes.connectors"


@cache
def available() -> dict[str, type[Connector]]:
    """Every installed connector class by name (loaded once)."""
    found: dict[str, type[Connector]] = {}
    for entry in entry_points(group=GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"entry point {entry.name} = {entry.value} is not a Connector")
        if cls.name != entry.name:
            raise TypeError(f"connector {entry.value} is named '{cls.name}', not '{entry.name}'")
        found[entry.name] = cls
    return dict(sorted(found.items()))


def connector_class(name: str) -> type[Connector]:
    connectors = available()
    if name in connectors:
        return connectors[name]
    suggestion = did_you_mean(name, connectors)
    raise ConnectorNotFound(
        f"No connector named '{name}' is installed.",
        hint=f"{suggestion}Installed: {', '.join(connectors) or 'none'}.",
    )
