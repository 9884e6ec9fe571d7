"""The interface both MCP backends implement: the tool layer is written once over it.

- :class:`~agnes_mcp.mcp_server.server_backend.ServerBackend` runs in the server with the
  caller's grants (HTTP transport).
- :class:`~agnes_mcp.mcp_server.workspace_backend.WorkspaceBackend` runs in an analyst's
  workspace (stdio transport): local parquet and snapshots, the server for the rest.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from agnes_mcp.rails.results import Answer

if TYPE_CHECKING:
    from agnes_mcp.catalog_models import CatalogEntry, TableSchema
    from agnes_mcp.identity import WhoAmI
    from agnes_mcp.mcp_server.tool_models import (
        DiskInfo,
        SessionExportOutput,
        SnapshotInfo,
    )
    from agnes_mcp.metrics.compiler import MetricRequest
    from agnes_mcp.metrics.summary import MetricDetail, MetricSummary
    from agnes_mcp.rails.snapshot_spec import SnapshotEstimate, SnapshotSpec


@dataclass
class CatalogListing:
    """The tables and metric definitions a caller may use, and what to know about the
    listing itself (a workspace offline lists the last catalog it saw, and says so)."""

    tables: list[CatalogEntry]
    metrics: list[MetricSummary]
    notes: list[str] = field(default_factory=list)


@dataclass
class MetricListing:
    metrics: list[MetricSummary]
    notes: list[str] = field(default_factory=list)


class Backend(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def whoami(self) -> WhoAmI: ...

    @abstractmethod
    def catalog(self, search: str | None, query_mode: str | None) -> CatalogListing: ...

    @abstractmethod
    def schema(self, table: str) -> TableSchema: ...

    @abstractmethod
    def describe(self, table: str, n: int) -> Answer: ...

    @abstractmethod
    def query(self, sql: str, limit: int | None) -> Answer: ...

    @abstractmethod
    def query_remote(self, sql: str, limit: int | None) -> Answer: ...

    @abstractmethod
    def snapshot_estimate(self, spec: SnapshotSpec) -> SnapshotEstimate: ...

    @abstractmethod
    def snapshot_create(
        self, spec: SnapshotSpec, name: str, ttl_seconds: int | None
    ) -> SnapshotInfo: ...

    @abstractmethod
    def snapshot_list(self) -> list[SnapshotInfo]: ...

    @abstractmethod
    def snapshot_drop(self, name: str) -> SnapshotInfo: ...

    @abstractmethod
    def metrics_list(self, search: str | None) -> MetricListing: ...

    @abstractmethod
    def metric_show(self, metric_id: str) -> MetricDetail: ...

    @abstractmethod
    def metric_query(self, metric_id: str, request: MetricRequest, limit: int | None) -> Answer: ...

    @abstractmethod
    def keep_result(self, table: pa.Table, answer: Answer) -> str:
        """Keep ``table`` (the rows of ``answer``, too large to show); return the name to
        query it by."""

    @abstractmethod
    def session_export(self, session: str | None, since: dt.datetime | None) -> SessionExportOutput:
        """This session's steps (or ``session``'s, and/or those since ``since``) as a
        notebook: written to a file (workspace) or served at a URL (server)."""

    def disk_info(self) -> DiskInfo:
        raise NotImplementedError("disk_info exists in a workspace only")
