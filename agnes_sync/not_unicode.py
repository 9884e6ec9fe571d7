"""Text holding a character that is not Unicode: a lone surrogate, which is what bytes
that were not UTF-8 become when read with Python's ``surrogateescape`` (SQL piped in
Latin-1), or a JSON ``\\udce9`` escape. Neither DuckDB nor a UTF-8 request body can hold
one, so where one is is said before either is tried."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class NotUnicode:
    index: int  # of the character, from 0
    byte: str  # " (the byte 0xE9)" for a byte read with surrogateescape, else ""


def not_unicode(text: str) -> NotUnicode | None:
    """The first character of ``text`` that is not Unicode, or None."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    byte = f" (the byte 0x{code - 0xDC00:02X})" if 0xDC80 <= code <= 0xDCFF else ""
    return NotUnicode(found.start(), byte)
