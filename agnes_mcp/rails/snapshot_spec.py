"""What a snapshot asks for and what it would cost: the same shapes on the server, in a
workspace and on the wire between them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SnapshotSpec(BaseModel):
    table_id: str = Field(min_length=1, max_length=200)
    select: list[str] = Field(min_length=1, max_length=500, description="Columns to keep.")
    where: str | None = Field(default=None, max_length=10_000, description="A predicate.")
    limit: int | None = Field(default=None, ge=1)
    order_by: list[str] = Field(
        default_factory=list, description="Columns, each optionally followed by DESC."
    )


class SnapshotEstimate(BaseModel):
    table_id: str
    estimated_scan_bytes: int
    estimated_result_rows: int | None
    estimated_result_bytes: int | None
    limit_bytes: int
    remaining_budget_bytes: int
    sql: str
    fits_cap: bool = Field(description="Whether it fits the per-query cap and the budget left.")
