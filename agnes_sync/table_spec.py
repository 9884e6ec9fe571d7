"""The fields of a registered table, declared once.

:class:`TableSpec` is what an admin registers. Everything else that describes a table is
derived from it or checked against it by the tests:

- the registry stores exactly its fields (``agnes_mcp.store.table_registry``);
- the REST API takes it for a registration and an all-optional copy of it for a change
  (``TableUpdate`` in ``agnes_mcp.api.routes.registry``);
- a connector is given the fields it reads as a :class:`~agnes_sync.connector.TableRequest`,
  made by ``TableRequest.of(spec)``;
- the CLI's ``register-table``/``update-table`` flags (``cli/table_flags.py``, stdlib only
  so ``agnes --help`` stays fast) are tested to cover exactly these fields.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agnes_sync.internal_names import internal_name

TABLE_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_NOT_ID = re.compile(r"[^a-z0-9]+")


def suggested_table_id(name: str) -> str:
    """A valid table id for a source's table name: accents folded (``étudiant`` ->
    ``etudiant``), everything else not a letter or digit an ``_``, a letter first."""
    folded = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    slug = _NOT_ID.sub("_", plain.lower()).strip("_") or "table"
    if not slug[0].isalpha() or internal_name(slug):
        slug = f"t_{slug}"
    return slug[:63].rstrip("_")


class QueryMode(StrEnum):
    LOCAL = "local"
    MATERIALIZED = "materialized"
    REMOTE = "remote"


class SyncStrategy(StrEnum):
    FULL_REFRESH = "full_refresh"
    INCREMENTAL = "incremental"
    PARTITIONED = "partitioned"


class PartitionGranularity(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


class TableSpec(BaseModel):
    """What an admin registers; the id doubles as the table's name in SQL."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Table name in SQL: lowercase letters, digits, '_'.")
    name: str = Field(default="", description="Display name (defaults to the id).")
    description: str = Field(default="", description="What the table holds, for the catalog.")
    source_type: str = Field(description="Connector that reads it, e.g. 'files'.")
    bucket: str | None = Field(default=None, description="Source-side container (folder, dataset).")
    source_table: str | None = Field(default=None, description="Source-side table or file name.")
    source_query: str | None = Field(default=None, description="SQL for materialized tables.")
    query_mode: QueryMode = Field(
        default=QueryMode.LOCAL,
        description="local: copied to laptops; materialized: SQL run in the source and copied; "
        "remote: queried in the source.",
    )
    sync_schedule: str | None = Field(
        default=None, description="'every 15m', 'hourly', 'daily 03:00' or a cron expression (UTC)."
    )
    sync_strategy: SyncStrategy = Field(
        default=SyncStrategy.FULL_REFRESH, description="How a sync brings the table up to date."
    )
    primary_key: list[str] | None = Field(
        default=None, description="Columns that identify a row (incremental merges)."
    )
    incremental_window_days: int | None = Field(
        default=None, ge=0, description="Days re-read before the watermark, for late rows."
    )
    max_history_days: int | None = Field(
        default=None, ge=1, description="Rows older than this many days are dropped."
    )
    incremental_column: str | None = Field(
        default=None, description="Column whose growth marks new rows (incremental syncs)."
    )
    where_filters: str | None = Field(
        default=None, description='Row filter applied at extraction, e.g. "amount > 0".'
    )
    partition_by: str | None = Field(
        default=None, description="DATE/TIMESTAMP column the parquet is partitioned by."
    )
    partition_granularity: PartitionGranularity | None = Field(
        default=None, description="Partition size: day, month or year."
    )
    initial_load_chunk_days: int | None = Field(
        default=None, ge=1, description="Days read per chunk on a table's first load."
    )
    server_only: bool = Field(default=False, description="Never distributed to laptops.")
    source_options: dict[str, Any] = Field(
        default_factory=dict, description="Reader options for the connector (e.g. CSV delimiter)."
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not TABLE_ID.match(value):
            raise ValueError(
                "must start with a lowercase letter and hold only lowercase letters, digits and '_'"
            )
        if internal_name(value):
            raise ValueError(
                "may not start with duckdb_, pragma_ or sqlite_: those names are kept for "
                "DuckDB's own objects, and a query naming one is refused"
            )
        return value


def change_fields() -> dict[str, Any]:
    """The spec's fields as :func:`pydantic.create_model` definitions for a change: each one
    optional with default ``None`` (a field left out stays unset), keeping its description and
    constraints. ``id`` is not among them: a table's id cannot change."""
    fields: dict[str, Any] = {}
    for name, info in TableSpec.model_fields.items():
        if name == "id":
            continue
        annotation: Any = info.annotation
        optional = annotation | None
        if info.metadata:  # constraints such as ge=0 still apply to a given value
            optional = Annotated[(optional, *info.metadata)]
        fields[name] = (optional, Field(default=None, description=info.description))
    return fields
