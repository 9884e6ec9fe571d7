"""What a snapshot holds and where it came from (its ``<name>.json``).

Apart from :mod:`agnes_sync.snapshot_files` because it is a pydantic model: importing
pydantic costs ~40 ms, which a pull (listing a workspace with no snapshots to read)
need not pay.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


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
