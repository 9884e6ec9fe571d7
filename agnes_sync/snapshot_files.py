"""Snapshots on disk: ``<name>.parquet`` plus ``<name>.json`` (what it holds, where from).

Used by the server (``DATA_DIR/snapshots/<user>/``) and by a workspace
(``.agnes/snapshots/``). The parquet is published atomically before its metadata, so a
snapshot is listed only when both are whole.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from agnes_sync import atomic
from agnes_sync.errors import AgnesError
from agnes_sync.internal_names import internal_name

if TYPE_CHECKING:
    import pyarrow as pa

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class SnapshotNameInvalid(AgnesError):
    code = "snapshot_invalid"
    status = 400


MAX_TTL_SECONDS = 10 * 366 * 24 * 3600  # ten years: "keep it", without a date overflow


def check_ttl(ttl_seconds: int | None) -> int | None:
    """A snapshot's lifetime in whole seconds, 1 to ten years (None: kept until dropped)."""
    if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise SnapshotNameInvalid(
            f"A snapshot's lifetime must be from 1 second to {MAX_TTL_SECONDS // 3600:,} "
            f"hours (ten years), not {ttl_seconds:,} seconds.",
            hint="Leave it out to keep the snapshot until you drop it.",
        )
    return ttl_seconds


class SnapshotMissing(AgnesError):
    code = "snapshot_not_found"
    status = 404
    default_hint = "List snapshots with snapshot_list."


class SnapshotMeta(BaseModel):
    name: str
    table_id: str = Field(description="The remote table it was taken from.")
    select: list[str]
    where: str | None = None
    order_by: list[str] = Field(default_factory=list)
    limit: int | None = None
    sql: str = Field(description="The query that produced it.")
    created_at: dt.datetime
    rows: int
    bytes: int = Field(description="Size of the parquet file.")
    bytes_scanned: int = 0
    truncated: bool = False
    ttl_seconds: int | None = None

    @property
    def expires_at(self) -> dt.datetime | None:
        if self.ttl_seconds is None:
            return None
        try:  # a lifetime stored before it was bounded may pass the last date there is
            return self.created_at + dt.timedelta(seconds=self.ttl_seconds)
        except OverflowError:
            return None

    def expired(self, now: dt.datetime) -> bool:
        expires = self.expires_at
        return expires is not None and now >= expires

    def cut_notes(self) -> list[str]:
        """What a reader must know about its rows: that its own limit cut them."""
        if not self.truncated:
            return []
        order = f" in the order {', '.join(self.order_by)}" if self.order_by else ""
        return [
            f"Cut by its own limit: the first {self.rows:,} rows{order} of more that match "
            "the filter. Take it again with a larger limit, or narrow the where clause, for "
            "the rest."
        ]


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise SnapshotNameInvalid(
            f"'{name}' is not a valid snapshot name.",
            hint="Use lowercase letters, digits and '_', starting with a letter (max 63).",
        )
    return name


def check_new_name(name: str) -> str:
    """:func:`check_name` for a snapshot about to be taken: also not a name queries are
    refused (one kept under such a name before stays readable, to be dropped)."""
    check_name(name)
    if internal_name(name):
        raise SnapshotNameInvalid(
            f"'{name}' is kept for DuckDB's own objects: a query naming it is refused.",
            hint="Pick a name that does not start with duckdb_, pragma_ or sqlite_.",
        )
    return name


class SnapshotFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def data_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.parquet"

    def _meta_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def save(self, table: pa.Table, meta: SnapshotMeta) -> SnapshotMeta:
        """Write the rows, then the metadata (with the file's real size)."""
        import pyarrow.parquet as pq  # only writers pay for it (a pull never does)

        self.root.mkdir(parents=True, exist_ok=True)
        destination = self.data_path(meta.name)
        staged = atomic.staging_path(destination)
        try:
            pq.write_table(table.replace_schema_metadata(None), staged, compression="zstd")
            size = staged.stat().st_size
            atomic.publish(staged, destination)
        finally:
            atomic.discard(staged)
        final = meta.model_copy(update={"bytes": size, "rows": table.num_rows})
        atomic.write_text(self._meta_path(meta.name), final.model_dump_json(indent=2))
        return final

    def get(self, name: str) -> SnapshotMeta | None:
        try:
            meta = SnapshotMeta.model_validate_json(self._meta_path(name).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return meta if self.data_path(name).is_file() else None

    def require(self, name: str) -> SnapshotMeta:
        meta = self.get(name)
        if meta is None:
            raise SnapshotMissing(f"There is no snapshot '{name}'.")
        return meta

    def all(self) -> list[SnapshotMeta]:
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob("*.json")):
            if NAME.match(path.stem):
                meta = self.get(path.stem)
                if meta is not None:
                    found.append(meta)
        return found

    def drop(self, name: str) -> SnapshotMeta:
        meta = self.require(name)
        atomic.discard(self._meta_path(name))  # unlisted first, then the data
        atomic.discard(self.data_path(name))
        return meta

    def prune_expired(self, now: dt.datetime) -> list[SnapshotMeta]:
        return [self.drop(m.name) for m in self.all() if m.expired(now)]

    def total_bytes(self) -> int:
        return sum(m.bytes for m in self.all())
