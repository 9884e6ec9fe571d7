"""The interface every remote engine implements, whatever the warehouse."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from sqlglot import exp

from agnes_mcp.query.catalog import CatalogTable
from agnes_mcp.query.sandbox import Limits, RunResult
from agnes_sync.connector import Column


@dataclass
class Estimate:
    """What running a query would scan, before it runs."""

    scan_bytes: int
    result_rows: int | None = None  # an upper bound where the engine can tell
    detail: dict[str, object] = field(default_factory=dict)


@dataclass
class RemoteResult(RunResult):
    bytes_scanned: int = 0
    job_id: str | None = None


class RemoteEngine(ABC):
    """A warehouse that runs SQL in its own dialect under a byte cap and returns Arrow."""

    dialect: str = "duckdb"
    name: str = "remote"

    @abstractmethod
    def estimate(self, tree: exp.Expression, tables: list[CatalogTable]) -> Estimate:
        """Bytes the query would scan (never by running a full scan)."""

    @abstractmethod
    def execute(
        self,
        tree: exp.Expression,
        tables: list[CatalogTable],
        *,
        limits: Limits,
        max_bytes: int,
        labels: dict[str, str],
    ) -> RemoteResult:
        """Run the query; the engine itself refuses to bill more than ``max_bytes``."""

    @abstractmethod
    def describe(self, table: CatalogTable) -> list[Column]:
        """The remote table's columns."""

    @abstractmethod
    def preview(self, table: CatalogTable, rows: int, limits: Limits) -> RemoteResult:
        """A few of the table's rows the cheapest way the warehouse has (never a scan)."""

    def close(self) -> None:  # noqa: B027 - engines without resources need nothing
        pass
