"""Paging the listing tools (catalog, schema, metrics_list) within the output budget.

A page holds what fits the budget (and at most ``page_size`` entries when one is given).
A listing with a cursor always moves: each page holds at least one entry, and the opaque
cursor it hands out is bound to the listing (its search and filters), so a cursor from
another listing is refused rather than silently misread.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from agnes_mcp.mcp_server import output_budget as ob
from agnes_mcp.rails.refusals import QueryRefused
from agnes_mcp.rails.results import Truncation

PAGE = 50  # catalog tables per page

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class CursorInvalid(QueryRefused):
    code = "cursor_invalid"
    status = 400
    default_hint = "Pass next_cursor from the previous page unchanged, or omit cursor."


def encode_cursor(offset: int, key: str) -> str:
    raw = json.dumps({"o": offset, "k": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, key: str) -> int:
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise CursorInvalid(
            "The cursor is not one this tool issued: pass next_cursor from the previous page "
            "as it was given, or leave cursor out for the first page."
        ) from None
    if data.get("k") != key or offset < 0:
        raise CursorInvalid("The cursor belongs to another listing (search or filter changed).")
    return offset


@dataclass(frozen=True)
class Page:
    """Where a page sits in its listing: what a renderer needs beside the entries."""

    offset: int = 0
    remaining: int = 0  # entries after this page
    next_cursor: str | None = None
    truncation: Truncation | None = None

    @property
    def truncated(self) -> bool:
        return self.remaining > 0


Render = Callable[[list[T], Page], tuple[M, str]]


def paginate(
    items: Sequence[T],
    render: Render[T, M],
    *,
    how_to_get_more: str,
    cursor: str | None = None,
    key: str | None = None,
    page_size: int | None = None,
) -> tuple[M, str]:
    """One page of ``items`` from ``cursor``, rendered by ``render``, within the budget.

    ``key`` names the listing its cursors belong to; without one there is a single page
    (cut to the budget) and no cursor.
    """
    offset = decode_cursor(cursor, key) if key is not None else 0
    rest = items[offset:] if page_size is None else items[offset : offset + page_size]

    def measured(chosen: Sequence[T]) -> tuple[dict[str, Any], str]:
        model, text = render(list(chosen), Page(offset=offset))
        return model.model_dump(mode="json"), text

    count = ob.fit_items(rest, measured, ob.DEFAULT_CHARS)
    if key is not None and rest:
        count = max(count, 1)
    remaining = len(items) - offset - count
    if remaining <= 0:
        return render(list(rest[:count]), Page(offset=offset))
    page = Page(
        offset=offset,
        remaining=remaining,
        next_cursor=encode_cursor(offset + count, key) if key is not None else None,
        truncation=Truncation(reason="page", how_to_get_more=how_to_get_more),
    )
    return render(list(rest[:count]), page)
