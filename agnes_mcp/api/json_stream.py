"""Streaming a result as JSON (a data route's default answer), from its Arrow rows.

The document is a :class:`~agnes_mcp.rails.results.QueryResult`, key for key: ``columns``,
then ``rows``, then everything said about them (``row_count``, ``truncated``,
``truncation`` with which limit cut the rows and how to get the rest, ``provenance``...).
The rows are rendered and sent a slice at a time, so the server holds the Arrow answer
and one slice, never the whole answer as Python values and JSON text as well: building
all of it first took three to four times the Arrow answer's memory (about 1 GB for an
answer at the default 256 MB byte cap), and failed as a 500 where memory was short.

The byte cap (``max_result_bytes``) is measured on the JSON sent, as before: the rows
stop before their JSON passes it. What is said about the rows depends on where they
stopped, so it follows them, in the same document: a client reading the answer whole
sees the truncation note as it always did.

The status (200) is sent before the first row, so an answer that fails after it cannot
become an error response. It ends instead where no reader can take it for a whole,
smaller answer: the rows are closed and an ``"error"`` object (``answer_incomplete``)
follows them, left open, so a strict JSON parser fails on the body, one that closes what
is left open (as some streaming and agent clients do) finds the error, and the
connection is closed before HTTP's end of the body, so the HTTP client fails too. The
server logs a line saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa
from fastapi.responses import StreamingResponse
from pydantic_core import to_json

from agnes_mcp.rails.results import QueryResult, row_slices, rows_of

# What is said about ``shown`` rows, and whether the byte cap cut them: the answer with
# no rows (its ``rows`` are sent as they are rendered).
Described = Callable[[int, bool], QueryResult]

_ROWS = b'"rows":[]'
INCOMPLETE = "answer_incomplete"
logger = logging.getLogger("agnes.api")
# Rows rendered at a time: as many as about this much Arrow holds (1 to 1,024 rows).
SLICE_BYTES = 1 << 20
_MAX_SLICE_ROWS = 1024


class _Rows:
    """The rows of ``table`` as JSON, stopped before they pass ``limit_bytes``; after the
    iteration, how many were sent and whether the cap stopped them."""

    def __init__(self, table: pa.Table, limit_bytes: int | None) -> None:
        self.table, self.limit = table, limit_bytes
        self.shown, self.cut = 0, False

    def __iter__(self) -> Iterator[bytes]:
        size = 2  # the list's brackets
        for piece in row_slices(self.table, SLICE_BYTES, _MAX_SLICE_ROWS):
            rows = rows_of(piece)
            whole = to_json(rows)[1:-1]  # the rows, comma-separated
            if self.limit is None or size + len(whole) + len(rows) <= self.limit:
                size += len(whole) + len(rows)
                yield (b"," if self.shown else b"") + whole
                self.shown += len(rows)
                continue
            parts = []
            for row in rows:
                text = to_json(row)
                size += len(text) + 1
                if size > self.limit:
                    self.cut = True
                    break
                parts.append(text)
            if parts:
                yield (b"," if self.shown else b"") + b",".join(parts)
                self.shown += len(parts)
            if self.cut:
                return


def json_chunks(
    table: pa.Table,
    limit_bytes: int | None,
    described: Described,
    extra: Mapping[str, Any] | None = None,
) -> Iterator[bytes]:
    """The JSON answer for ``table``'s rows, in pieces; ``extra``: keys after the rest.
    Failing after its first piece, it ends unparseable (:func:`_incomplete`) and raises."""
    head, found, _ = described(0, False).model_dump_json().encode().partition(_ROWS)
    assert found, "a QueryResult has rows"
    yield head + b'"rows":['
    rows = _Rows(table, limit_bytes)
    try:
        yield from rows
        _, _, tail = described(rows.shown, rows.cut).model_dump_json().encode().partition(_ROWS)
        if extra:
            tail = tail[:-1] + b"," + to_json(dict(extra))[1:]
    except Exception as exc:
        yield _incomplete(rows.shown, table.num_rows, exc)
        raise
    yield b"]" + tail


def _incomplete(sent: int, rows: int, exc: Exception) -> bytes:
    """The end of an answer that failed after ``sent`` of its ``rows`` were sent: the rows
    closed, then an error object left open (never a complete document), and a log line."""
    logger.error(
        "a JSON answer failed after %s of its %s rows were sent (%s); its body was ended "
        "unparseable and the connection closed",
        f"{sent:,}",
        f"{rows:,}",
        type(exc).__name__,
    )
    error = {
        "code": INCOMPLETE,
        "message": f"The answer failed after {sent:,} of its {rows:,} rows were sent; "
        "these rows are not the whole answer.",
        "hint": "Send the query again.",
    }
    return b'],"error":' + to_json(error)[:-1] + b","


def json_response(
    table: pa.Table,
    limit_bytes: int | None,
    described: Described,
    extra: Mapping[str, Any] | None = None,
) -> StreamingResponse:
    return StreamingResponse(
        json_chunks(table, limit_bytes, described, extra), media_type="application/json"
    )
