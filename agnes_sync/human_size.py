"""Byte counts in human units, one way everywhere (CLI, MCP text, pull progress)."""

from __future__ import annotations


def human_size(value: int | float | None) -> str:
    """``value`` bytes in B, KB, MB, GB or TB (powers of 1024); ``?`` when unknown."""
    if value is None:
        return "?"
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(amount) < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"
