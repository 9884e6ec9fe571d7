"""The interface every remote engine implements, and the registry that finds them.

A remote engine is what a warehouse connector provides so that its tables can stay
``remote``: it runs SQL in the warehouse's own dialect under a byte cap and answers every
question the rails have about that dialect (how a table is named there, how "the last
days" is spelled, which predicates are foreign to it). Engines are found through the
``agnes.remote_engines`` entry-point group, keyed by the name a connector writes into
``_remote_attach.engine``; the built-in ones register the same way a third party would::

    [project.entry-points."agnes.remote_engines"]
    duckdb = "connectors.duckdb_warehouse.engine:DuckDBWarehouseEngine"
    bigquery = "connectors.bigquery.engine:BigQueryEngine"
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, ClassVar

from sqlglot import exp

from agnes_mcp.rails.refusals import RemoteEstimateFailed
from agnes_mcp.rails.sandbox import Limits, RunResult
from agnes_mcp.rails.spill import SPILL_BYTES
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation
from agnes_sync.connector import Column
from agnes_sync.suggest import did_you_mean

if TYPE_CHECKING:
    from agnes_sync.connector import Connector

ENTRY_POINT_GROUP = "agnes.remote_engines"


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
    # What the warehouse billed for the query, where it bills otherwise than by the bytes
    # read (BigQuery: rounded up, a minimum per table); None: the bytes read.
    bytes_billed: int | None = None

    @classmethod
    def of(
        cls,
        result: RunResult,
        bytes_scanned: int = 0,
        job_id: str | None = None,
        *,
        bytes_billed: int | None = None,
    ) -> RemoteResult:
        """``result`` (already cut to the caps) with what the warehouse read for it."""
        return cls(
            table=result.table,
            truncated=result.truncated,
            reason=result.reason,
            seconds=result.seconds,
            bytes_scanned=bytes_scanned,
            job_id=job_id,
            bytes_billed=bytes_billed,
        )

    @property
    def bytes_charged(self) -> int:
        """What the caller's budget is charged: the bill where there is one."""
        return self.bytes_scanned if self.bytes_billed is None else self.bytes_billed


@dataclass(frozen=True)
class EngineResources:
    """What the server lets one engine use on this machine (engines running in-process)."""

    memory_limit: str
    threads: int
    spill_bytes: int = SPILL_BYTES  # disk past memory_limit (agnes_mcp.rails.spill)


class RemoteEngine(ABC):
    """A warehouse that runs SQL in its own dialect under a byte cap and returns Arrow.

    Class-level members answer dialect questions without a connection (a workspace asks
    them too); instances are opened per warehouse by :meth:`open`.
    """

    dialect: ClassVar[str] = "duckdb"  # the sqlglot dialect of the warehouse's SQL
    name: ClassVar[str] = "remote"  # shown in provenance
    # Whether a query's qualified names (dataset.table) are rewritten to the warehouse's
    # canonical path too, not only bare table ids.
    canonical_paths: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def open(
        cls, location: RemoteLocation, source: Connector, resources: EngineResources
    ) -> RemoteEngine:
        """An engine for the warehouse at ``location``, configured by its source."""

    @classmethod
    def recent_predicate(cls, column: str, days: int) -> str:
        """A predicate keeping the last ``days`` days of ``column``, in this dialect."""
        return f"{column} >= current_date - INTERVAL {int(days)} DAY"

    @classmethod
    def since_predicate(cls, column: str, value: str) -> str:
        """A predicate keeping rows of ``column`` from ``value`` (an ISO date or
        timestamp) on, in this dialect."""
        kind = "TIMESTAMP" if len(value) > 10 else "DATE"
        return f"{column} >= {kind} '{value}'"

    @classmethod
    def table_reference(cls, parts: list[str]) -> exp.Table:
        """How a query names the warehouse table whose path is ``parts``."""
        return exp.to_table(".".join(f'"{p}"' for p in parts), dialect="duckdb")

    @classmethod
    def foreign_syntax(cls, predicate: str, table_id: str) -> str | None:
        """What is wrong when ``predicate`` on ``table_id`` is written in another dialect's
        syntax (naming this dialect's spelling), else None."""
        return None

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
        """Run the query; the engine itself refuses to bill more than ``max_bytes``. A
        refusal raised once the query has started (the cap, a timeout, an engine error)
        carries what it read in ``details["bytes_scanned"]`` where the engine can tell
        (and what the warehouse billed for it in ``details["bytes_billed"]``, where it
        bills otherwise): the caller's budget is charged that, whatever the query's
        outcome."""

    @abstractmethod
    def describe(self, table: CatalogTable) -> list[Column]:
        """The remote table's columns."""

    @abstractmethod
    def preview(self, table: CatalogTable, rows: int, limits: Limits) -> RemoteResult:
        """A few of the table's rows the cheapest way the warehouse has (never a scan)."""

    def column_range(self, table: CatalogTable, column: str) -> tuple[str, str] | None:
        """The smallest and largest value of ``column`` (ISO text), from the warehouse's
        metadata and never by a scan; None when the warehouse cannot tell for free."""
        return None

    def close(self) -> None:  # noqa: B027 - engines without resources need nothing
        pass


class UnknownEngine(RemoteEstimateFailed):
    code = "remote_engine_unknown"
    status = 500
    default_hint = (
        "Install the package that provides this engine (entry-point group "
        f"'{ENTRY_POINT_GROUP}'), or re-sync the source."
    )


@functools.cache
def _registered() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def engine_names() -> list[str]:
    return sorted(_registered())


@functools.cache
def engine_class(name: str) -> type[RemoteEngine]:
    """The engine registered as ``name``, loaded on first use."""
    entry = _registered().get(name)
    if entry is None:
        raise UnknownEngine(
            f"No remote engine '{name}' is installed here.",
            hint=f"{did_you_mean(name, engine_names())}Installed: "
            f"{', '.join(engine_names()) or 'none'}.",
        )
    loaded = entry.load()  # type: ignore[attr-defined]
    if not (isinstance(loaded, type) and issubclass(loaded, RemoteEngine)):
        raise UnknownEngine(f"The entry point '{name}' is not a RemoteEngine.")
    return loaded


def dialect_of(table: CatalogTable) -> str:
    """The SQL dialect a query on ``table`` is written in."""
    return engine_class(table.remote.engine).dialect if table.remote is not None else "duckdb"
