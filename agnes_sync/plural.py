"""A count with its noun agreeing, for every output that says one (the CLI, MCP texts)."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 metric``, ``0 metrics``, ``1,000 rows``."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
