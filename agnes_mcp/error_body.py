"""The one shape of a refusal: a REST error body, and an MCP tool's ``structuredContent``
when it refuses (so each tool's output schema can describe it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorFields(BaseModel):
    code: str = Field(description="Stable: branch on it (e.g. table_not_found).")
    message: str
    hint: str | None = Field(default=None, description="What to do next, in words.")
    next_step: dict[str, Any] | None = Field(
        default=None, description="A ready call: the MCP tool with its arguments, and the CLI."
    )
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every refusal's shape, whatever the route and status."""

    error: ErrorFields
