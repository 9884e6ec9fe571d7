"""Text for a terminal: data may hold control characters, which must never drive it."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with control and invisible formatting characters shown as escapes, so
    data from the server can never drive the terminal (line breaks and tabs stay)."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ascii(ch)[1:-1] for ch in text)
