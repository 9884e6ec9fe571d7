"""A query's outcome: its Arrow rows and everything needed to describe them (provenance,
truncation), as the API, the MCP tools and the CLI present it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from agnes_mcp.rails.planner import Plan
from agnes_mcp.rails.policy import ParsedQuery
from agnes_mcp.rails.results import (
    Answer,
    Provenance,
    QueryResult,
    TableRead,
    Truncation,
    columns_of,
    cut_by,
    truncation_for,
)
from agnes_mcp.rails.sandbox import Limits, RunResult


@dataclass
class Outcome:
    """A query's Arrow result with everything needed to describe it."""

    table: pa.Table
    truncated: bool
    reason: str | None
    plan: Plan
    parsed: ParsedQuery
    engine: str
    bytes_scanned: int
    remaining_budget: int | None
    seconds: float
    limits: Limits
    total_rows: int | None = None  # the whole answer's rows, counted when it was cut
    bytes_billed: int | None = None  # what the warehouse billed, where not bytes_scanned
    extra: dict[str, Any] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """What the answer should say about the tables it read: each one not whole yet
        (its rows are not all its source holds), each a workspace's last pull failed to
        refresh, and, for an empty answer, the range each partitioned table holds (a
        filter outside it is the likely reason)."""
        said = [note for t in self.plan.tables if (note := t.incomplete_note()) is not None]
        said += [t.stale for t in self.plan.tables if t.stale is not None]
        if not self.table.num_rows:
            said += [note for t in self.plan.tables if (note := t.holds()) is not None]
        return said

    def _total(self) -> int | None:
        """The whole answer's rows: counted when cut, the rows themselves when not."""
        return self.total_rows if self.truncated else self.table.num_rows

    @property
    def limit(self) -> int:
        return self.limits.rows

    def truncation(self) -> Truncation | None:
        if not self.truncated:
            return None
        return truncation_for(
            self.reason,
            self.table.num_rows,
            self.limits.rows_source,
            self.total_rows,
            self.limits.bytes,
        )

    def answer(self, *, sql: str | None = None, **said: Any) -> Answer:
        """The rows with what is said about them (``said``: metric_variant, dialect)."""
        return Answer(
            table=self.table,
            row_count=self.table.num_rows,
            truncated=self.truncated,
            reason=cut_by(self.truncated, self.reason),
            truncation=self.truncation(),
            bytes_scanned=self.bytes_scanned,
            bytes_billed=self.bytes_billed,
            remaining_budget_bytes=self.remaining_budget,
            provenance=self.provenance(),
            row_limit=self.limits.rows,
            row_limit_source=self.limits.rows_source,
            byte_limit=self.limits.bytes,
            total_rows=self._total(),
            notes=self.notes(),
            sql=sql,
            **said,
        )

    def described(self, shown: int, cut: bool) -> QueryResult:
        """What the JSON answer says of its first ``shown`` rows, ``cut``: whether the byte
        cap stopped them (its rows are streamed: :mod:`agnes_mcp.api.json_stream`). Built
        without validation: every field is already of its type."""
        truncated, reason = (True, "bytes") if cut else (self.truncated, self.reason)
        truncation = (
            truncation_for("bytes", shown, byte_limit=self.limits.bytes)
            if cut
            else self.truncation()
        )
        return QueryResult.model_construct(
            columns=columns_of(self.table),
            rows=[],
            row_count=shown,
            total_rows=self._total(),
            truncated=truncated,
            truncation=truncation,
            reason=cut_by(truncated, reason),
            row_limit=self.limits.rows,
            row_limit_source=self.limits.rows_source,
            byte_limit=self.limits.bytes,
            bytes_scanned=self.bytes_scanned,
            bytes_billed=self.bytes_billed,
            remaining_budget_bytes=self.remaining_budget,
            provenance=self.provenance(rows=shown),
            notes=self.notes(),
        )

    def provenance(self, *, rows: int | None = None) -> Provenance:
        """Where the rows came from; ``rows``: how many the answer holds, when it was cut
        after it was read (the JSON answer at the byte cap), else every row read."""
        return Provenance(
            tables=[
                TableRead(
                    id=t.id, query_mode=t.query_mode, source=t.source, freshness=t.extracted_at
                )
                for t in self.plan.tables
            ],
            engine=self.engine,
            bytes_scanned=self.bytes_scanned,
            row_count=self.table.num_rows if rows is None else rows,
            duration_ms=round(self.seconds * 1000, 3),
            fingerprint=self.parsed.fingerprint,
        )


def outcome_of(
    result: RunResult,
    plan: Plan,
    parsed: ParsedQuery,
    engine: str,
    scanned: int,
    remaining: int | None,
    limits: Limits,
) -> Outcome:
    return Outcome(
        table=result.table,
        truncated=result.truncated,
        reason=result.reason,
        plan=plan,
        parsed=parsed,
        engine=engine,
        bytes_scanned=scanned,
        remaining_budget=remaining,
        seconds=result.seconds,
        limits=limits,
    )
