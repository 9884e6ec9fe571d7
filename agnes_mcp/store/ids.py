"""Identifiers for rows of the system store: a type prefix and 16 random hex digits."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import overload


def new_id(prefix: str) -> str:
    """E.g. ``usr_3f9a1c0b7d2e4a56``; the prefix tells the kind of object at a glance."""
    return f"{prefix}_{secrets.token_hex(8)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """DuckDB hands back TIMESTAMPTZ in the session zone; the store speaks UTC."""
    return value.astimezone(UTC) if value is not None else None
