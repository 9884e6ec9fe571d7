"""Configured data sources (``sources:`` in the settings) and their connector instances.

A table's ``source_type`` names a configured source; the source says which connector
reads it and with what options. Its extract lives in ``extracts/<source name>/``.
"""

from __future__ import annotations

import threading

from pydantic import BaseModel

from agnes_mcp.settings import AgnesSettings
from agnes_sync.connector import Connector, SourceContext
from agnes_sync.connector_registry import connector_class
from agnes_sync.errors import SourceNotConfigured
from agnes_sync.suggest import did_you_mean


class SourceInfo(BaseModel):
    name: str
    connector: str
    description: str
    capabilities: list[str]


class SourceCatalog:
    def __init__(self, settings: AgnesSettings) -> None:
        self._settings = settings
        self._instances: dict[str, Connector] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._settings.sources)

    def connector(self, source: str) -> Connector:
        """The connector instance of configured source ``source`` (created once)."""
        with self._lock:
            if source in self._instances:
                return self._instances[source]
            config = self._settings.sources.get(source)
            if config is None:
                suggestion = did_you_mean(source, self.names())
                raise SourceNotConfigured(
                    f"No source named '{source}' is configured.",
                    hint=f"{suggestion}Configured sources: {', '.join(self.names()) or 'none'}; "
                    "add one under 'sources:' in instance.yaml.",
                )
            cls = connector_class(config.connector)
            instance = cls(SourceContext(source, config.options, self._settings.data_dir))
            self._instances[source] = instance
            return instance

    def describe(self) -> list[SourceInfo]:
        infos = []
        for name in self.names():
            config = self._settings.sources[name]
            cls = connector_class(config.connector)
            infos.append(
                SourceInfo(
                    name=name,
                    connector=config.connector,
                    description=config.description or cls.description,
                    capabilities=sorted(cls.capabilities),
                )
            )
        return infos
