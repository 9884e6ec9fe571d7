""" "Did you mean ...?": the one place names are matched against the ones that exist."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggestions(word: str, choices: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` of ``choices`` closest to ``word`` (none when nothing is close)."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=cutoff)


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """``"Did you mean 'a', 'b'? "`` (with the trailing space), or ``""``."""
    close = suggestions(word, choices, n=n, cutoff=cutoff)
    return f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
