"""Byte counts in human units, one way everywhere (CLI, MCP text, pull progress, the admin
app, refusals): powers of 1024, named as such (KiB, MiB, GiB, TiB). A setting written
``5GB`` is 5,000,000,000 bytes and ``5GiB`` 5,368,709,120 (pydantic's ``ByteSize``): a
power of 1024 shown as "GB" said 4.7 GB of a cap an admin set to 5GB."""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(value: int | float | None) -> str:
    """``value`` bytes in B, KiB, MiB, GiB or TiB; ``?`` when unknown."""
    if value is None:
        return "?"
    amount = float(value)
    for unit in UNITS[:-1]:
        if abs(amount) < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} {UNITS[-1]}"


def exact_size(value: int) -> str:
    """``value`` bytes readable and exact, for a limit someone compares against a setting:
    ``5.0 GiB (5,368,709,120 bytes)``; small counts are exact already (``512 B``)."""
    shown = human_size(value)
    return shown if abs(value) < 1024 else f"{shown} ({value:,} bytes)"
