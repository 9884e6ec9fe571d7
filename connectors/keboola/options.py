"""Options of the keboola connector, declared once (validation, CLI help and admin forms)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agnes_sync.env_names import EnvName
from agnes_sync.type_names import checked_type_names
from agnes_sync.url_host import url_host_problem


class KeboolaOptions(BaseModel):
    """Source options: which stack, and the env var holding the Storage API token."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="The stack's URL, e.g. https://connection.example.com.")
    token_env: EnvName = Field(
        description="Name of the env var holding the Storage API token (never the token).",
    )
    file_type: Literal["auto", "csv", "parquet"] = Field(
        default="auto",
        description="Export file type; 'auto' asks for parquet and falls back to CSV "
        "when the stack refuses it.",
    )
    parallel_downloads: int = Field(
        default=8, ge=1, le=64, description="Slices of a sliced export downloaded at once."
    )
    job_timeout_seconds: float = Field(
        default=3600, gt=0, description="How long an export job may take before the sync fails."
    )
    job_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="First wait between job polls (grows to 15 s)."
    )
    http_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per API call on 429, 5xx and network errors."
    )
    http_timeout_seconds: float = Field(default=60, gt=0, description="Timeout of one request.")
    max_retry_after_seconds: float = Field(
        default=120,
        ge=0,
        description="Longest Retry-After honoured inside a sync; longer fails it as transient.",
    )

    @field_validator("url")
    @classmethod
    def _stack_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the stack's http(s) URL, e.g. https://connection.example.com")
        problem = url_host_problem(value)
        if problem:
            raise ValueError(problem)
        if parts.query or parts.fragment or parts.path.strip("/"):
            raise ValueError("must be the stack's base URL, without a path or query")
        return f"{parts.scheme}://{parts.netloc}"


class KeboolaTableOptions(BaseModel):
    """Per-table options (``--source-option``)."""

    model_config = ConfigDict(extra="forbid")

    columns: list[str] | None = Field(
        default=None, min_length=1, description="Export only these columns (default: all)."
    )
    column_types: dict[str, str] | None = Field(
        default=None,
        description="DuckDB types of columns, e.g. {'amount': 'DOUBLE'}; columns of untyped "
        "tables are VARCHAR otherwise.",
    )

    @field_validator("column_types")
    @classmethod
    def _types_are_type_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return checked_type_names(value)
