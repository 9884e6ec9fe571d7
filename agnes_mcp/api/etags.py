"""Conditional requests: does an ``If-None-Match`` header name the current entity tag?"""

from __future__ import annotations

import re

_ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')


def if_none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 section 13.1.2: ``*``, or any listed tag equal under weak comparison
    (``W/"x"`` matches ``"x"``), so a cache that weakened the tag still gets its 304."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return etag.strip('"') in _ENTITY_TAG.findall(header)
