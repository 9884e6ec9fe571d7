"""The sample connector generates rows instead of reading them.

It exists for tests and demos of the engine itself (scheduler, retries, conflicts):
options make a table slow (``delay_seconds``) or fail (``fail_times`` transient
failures, or a ``terminal`` one), without any external system.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from agnes_sync import strategies
from agnes_sync.connector import Capability, Column, Connector, SourceTable, TableRequest
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import TerminalSyncError, TransientSyncError

_attempts: dict[tuple[str, str], int] = {}
_lock = threading.Lock()


class SampleTableOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: int = Field(default=100, ge=0, le=10_000_000, description="Rows to generate.")
    seed: int = Field(default=1, description="Changes the generated values.")
    delay_seconds: float = Field(default=0, ge=0, le=300, description="Sleep before extracting.")
    fail_times: int = Field(default=0, ge=0, description="Fail this many attempts first.")
    failure: Literal["transient", "terminal"] = Field(default="transient")


class SampleConnector(Connector):
    name = "sample"
    description = "Generated rows (id, day, amount, label) for tests and demos of the engine."
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.FULL_REFRESH, Capability.INCREMENTAL, Capability.PARTITIONED}
    )
    TableOptions = SampleTableOptions

    def _sql(self, options: SampleTableOptions) -> str:
        return (
            "SELECT range AS id, DATE '2026-01-01' + (range % 90)::INTEGER AS day, "
            f"round((hash(range, {options.seed}) % 10000) / 100.0, 2) AS amount, "
            f"'row ' || range AS label FROM range({options.rows})"
        )

    def list_tables(self) -> list[SourceTable]:
        return [SourceTable(source_table="generated", suggested_id="sample")]

    def describe_table(self, request: TableRequest) -> list[Column]:
        return [
            Column("id", "BIGINT", False),
            Column("day", "DATE"),
            Column("amount", "DOUBLE"),
            Column("label", "VARCHAR"),
        ]

    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        self.check_supported(request)
        options = cast(SampleTableOptions, self.table_options(request))
        if options.delay_seconds:
            time.sleep(options.delay_seconds)
        key = (self.context.name, request.id)
        with _lock:
            _attempts[key] = attempt = _attempts.get(key, 0) + 1
        if attempt <= options.fail_times:
            error = TransientSyncError if options.failure == "transient" else TerminalSyncError
            raise error(f"injected {options.failure} failure {attempt} of {options.fail_times}")
        con = self.duckdb_cursor(writer.paths.root)
        try:
            return strategies.run(con, self._sql(options), request, writer)
        finally:
            con.close()
