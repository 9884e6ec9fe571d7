"""The manifest: what a workspace should hold, per caller, as the server describes it.

Only tables the caller is granted and that are distributed (local or materialized, not
server-only) are listed with their files; remote tables are listed as metadata. A file's
``path`` is relative to the workspace's ``.agnes/data/`` and its ``hash`` (BLAKE3 of the
bytes) is the download's strong ETag. ``api_version`` changes only when a client could
no longer read the document.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from agnes_sync.hashing import new_hasher

API_VERSION = 1


class ManifestColumn(BaseModel):
    name: str
    type: str


class ManifestPart(BaseModel):
    path: str = Field(
        description="Relative to .agnes/data/, e.g. orders/order_date_month=2026-01/part-0.parquet"
    )
    size: int
    hash: str
    rows: int | None = None
    part: str | None = Field(default=None, description="The partition key, for partitioned tables.")


class ManifestTable(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    description: str
    query_mode: str
    source_type: str
    rows: int | None
    size_bytes: int
    columns: list[ManifestColumn] = Field(alias="schema")
    updated: dt.datetime | None
    hash: str = Field(description="Of the whole table: changes when any part changes.")
    partition_by: str | None = None
    parts: list[ManifestPart]
    incomplete: str | None = Field(
        default=None,
        description="Why the table's rows are not all its source holds yet (a first load "
        "still under way: the next sync loads the rest); absent when they are.",
    )


class ManifestRemote(BaseModel):
    """Metadata only; the columns are one ``GET /api/catalog/{id}/schema`` away (they live
    in the warehouse, and asking it is not free)."""

    id: str
    name: str
    description: str
    query_mode: str = "remote"
    source_type: str
    engine: str
    rows: int | None
    size_bytes: int | None
    partition_by: str | None = None
    alias: str | None = Field(
        default=None, description="The source's alias: the first part of a warehouse path."
    )
    remote_name: str | None = Field(
        default=None, description="The table's path in its warehouse (schema.table, ...)."
    )
    partition_range: list[str] | None = Field(
        default=None, description="[min, max] of partition_by at the last sync, ISO text."
    )


class Manifest(BaseModel):
    api_version: int = API_VERSION
    server_version: str
    generated_at: dt.datetime
    user: str
    tables: list[ManifestTable]
    remote_tables: list[ManifestRemote]


def table_hash(parts: list[ManifestPart]) -> str:
    """One hash over a table's parts (their paths and hashes, in order)."""
    hasher = new_hasher()
    for part in sorted(parts, key=lambda p: p.path):
        hasher.update(f"{part.path}\0{part.hash}\n".encode())
    return str(hasher.hexdigest())
