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

from agnes_sync import atomic
from agnes_sync.errors import AgnesError
from agnes_sync.internal_names import internal_name

if TYPE_CHECKING:
    import pyarrow as pa

    from agnes_sync.snapshot_meta import SnapshotMeta

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


def check_name(name: str) -> str:
    """``name`` as SQL reads it (an unquoted identifier: any case, folded to lowercase),
    the one form every snapshot is kept, listed, queried and dropped under: ``S1`` was
    refused by ``snapshot drop`` and ``create`` while ``SELECT * FROM S1`` read ``s1``."""
    folded = name.lower()
    if not NAME.match(folded) or not name.isascii():
        raise SnapshotNameInvalid(
            f"'{name}' is not a valid snapshot name.",
            hint="Use letters, digits and '_', starting with a letter (max 63); names are "
            "read as SQL reads them, in any case (S1 is s1).",
        )
    return folded


def check_new_name(name: str) -> str:
    """:func:`check_name` for a snapshot about to be taken: also not a name queries are
    refused (one kept under such a name before stays readable, to be dropped)."""
    name = check_name(name)
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
        from agnes_sync import arrow_parquet  # only writers pay for pyarrow (a pull never does)

        self.root.mkdir(parents=True, exist_ok=True)
        destination = self.data_path(meta.name)
        staged = atomic.staging_path(destination)
        try:
            arrow_parquet.write_table(table, staged)
            size = staged.stat().st_size
            atomic.publish(staged, destination)
        finally:
            atomic.discard(staged)
        final = meta.model_copy(update={"bytes": size, "rows": table.num_rows})
        atomic.write_text(self._meta_path(meta.name), final.model_dump_json(indent=2))
        return final

    def get(self, name: str) -> SnapshotMeta | None:
        from agnes_sync.snapshot_meta import SnapshotMeta  # pydantic: ~40 ms, not for a pull

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
