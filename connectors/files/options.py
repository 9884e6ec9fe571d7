"""Options of the files connector, declared once (validation, CLI help and admin forms)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agnes_sync.type_names import checked_type_names


class FilesOptions(BaseModel):
    """Source options: where the files are."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Folder holding the files (relative to the data dir).")


class FileTableOptions(BaseModel):
    """Per-table reader options; anything not given is inferred by DuckDB's sniffer."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["auto", "csv", "tsv", "parquet", "json", "ndjson"] = Field(
        default="auto", description="File format; 'auto' goes by the file extension."
    )
    delimiter: str | None = Field(default=None, max_length=4, description="CSV field separator.")
    header: bool | None = Field(
        default=None, description="Whether the first CSV line names columns."
    )
    quote: str | None = Field(default=None, max_length=1, description="CSV quote character.")
    escape: str | None = Field(default=None, max_length=1, description="CSV escape character.")
    encoding: Literal["utf-8", "utf-16", "latin-1"] | None = Field(
        default=None,
        description="CSV text encoding: utf-8 (the default), utf-16 or latin-1.",
    )
    max_line_size: int | None = Field(
        default=None,
        ge=1,
        le=1 << 30,
        description="Longest CSV line in bytes (DuckDB's default: 2,000,000).",
    )
    null_string: str | None = Field(default=None, description="Text that means NULL in CSV.")
    skip_rows: int | None = Field(default=None, ge=0, description="Lines to skip before the data.")
    date_format: str | None = Field(default=None, description="strptime format of DATE columns.")
    timestamp_format: str | None = Field(default=None, description="strptime format of timestamps.")
    columns: dict[str, str] | None = Field(
        default=None, description="Explicit column types, e.g. {'id': 'BIGINT'} (all columns)."
    )

    @field_validator("columns")
    @classmethod
    def _types_are_type_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return checked_type_names(value)
