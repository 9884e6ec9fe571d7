"""What a snapshot asks for and what it would cost: the same shapes on the server, in a
workspace and on the wire between them."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class SnapshotSpec(BaseModel):
    table_id: str = Field(min_length=1, max_length=200)
    select: list[str] = Field(min_length=1, max_length=500, description="Columns to keep.")
    where: str | None = Field(default=None, max_length=10_000, description="A predicate.")
    limit: int | None = Field(default=None, ge=1)
    order_by: list[str] = Field(
        default_factory=list, description="Columns, each optionally followed by DESC."
    )

    @field_validator("table_id")
    @classmethod
    def _table_id_as_registered(cls, value: str) -> str:
        """Table ids are lower case; ``WEB_SESSIONS`` names ``web_sessions``, as in SQL,
        ``schema`` and ``describe`` (it was refused as a table you may not read)."""
        return value.lower()


class SnapshotEstimate(BaseModel):
    table_id: str
    estimated_scan_bytes: int
    estimated_result_rows: int | None = Field(
        description="At most this many rows match (an upper bound), when the warehouse can tell."
    )
    estimated_result_bytes: int | None
    limit_bytes: int
    remaining_budget_bytes: int
    sql: str
    max_snapshot_rows: int = Field(description="Most rows a snapshot may hold.")
    max_snapshot_bytes: int = Field(description="Most bytes a snapshot may hold.")
    fits_cap: bool = Field(
        description="Whether it fits the per-query scan cap, the budget left and the snapshot "
        "caps (as far as the estimate can tell: result rows and bytes are upper bounds)."
    )
    blocked_by: str | None = Field(
        default=None,
        description="The first limit it would hit: per_query_bytes, per_user_daily_bytes, "
        "max_snapshot_rows or max_snapshot_bytes.",
    )
