"""Streaming a result as Arrow IPC (``application/vnd.apache.arrow.stream``).

Provenance and truncation travel in-band, as schema metadata (``agnes.*`` keys), and
again in ``X-Agnes-*`` headers for clients that read headers first (the short scalars:
a long SQL text stays in the metadata). Batches are sent as
they are encoded, so a large result is never held twice in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from fastapi.responses import StreamingResponse

ARROW_STREAM = "application/vnd.apache.arrow.stream"
logger = logging.getLogger("agnes.api")
BATCH_ROWS = 65_536
# The longest value an X-Agnes-* header carries. The SQL of a metric or snapshot can be
# 100,000 characters (more as JSON): a client reads a head of at most 100 KiB (httpx) or
# lines of 64 KiB (http.client), and a proxy a few KiB (nginx: 4-8 KiB), and failed the
# whole answer. A longer value is in the schema metadata only, like every non-scalar.
MAX_HEADER_CHARS = 1024


class _Pending:
    """A write-only sink that hands over what was written since the last look."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _batches(table: pa.Table, *, max_chunksize: int) -> list[pa.RecordBatch]:
    batches: list[pa.RecordBatch] = table.to_batches(max_chunksize=max_chunksize)
    return batches


def ipc_chunks(table: pa.Table, metadata: dict[str, Any]) -> Iterator[bytes]:
    encoded = {
        f"agnes.{k}".encode(): json.dumps(v, default=str).encode() for k, v in metadata.items()
    }
    schema = table.schema.with_metadata({**(table.schema.metadata or {}), **encoded})
    pending = _Pending()
    sent = 0
    try:
        with pa.ipc.new_stream(pa.PythonFile(pending, mode="w"), schema) as writer:
            for batch in _batches(table, max_chunksize=BATCH_ROWS):
                writer.write_batch(batch)
                data = pending.take()
                if data:
                    yield data
                    sent += batch.num_rows
    except Exception as exc:
        # never the stream's end marker (its writer's exit wrote one, not sent): the
        # connection closes before HTTP's end of the body, and agnes.row_count, sent
        # ahead of the rows, tells a reader the answer is cut
        logger.error(
            "an Arrow answer failed after %s of its %s rows were sent (%s); the "
            "connection was closed",
            f"{sent:,}",
            f"{table.num_rows:,}",
            type(exc).__name__,
        )
        raise
    data = pending.take()
    if data:
        yield data


def headers_of(metadata: dict[str, Any]) -> dict[str, str]:
    """The ``X-Agnes-*`` headers: each scalar of ``metadata`` as JSON, when that is at most
    :data:`MAX_HEADER_CHARS` long (every value is in the schema metadata too)."""
    encoded = {
        f"X-Agnes-{k.replace('_', '-').title()}": json.dumps(v, default=str)
        for k, v in metadata.items()
        if isinstance(v, (int, float, bool, str)) or v is None
    }
    return {name: value for name, value in encoded.items() if len(value) <= MAX_HEADER_CHARS}


def arrow_response(table: pa.Table, metadata: dict[str, Any]) -> StreamingResponse:
    return StreamingResponse(
        ipc_chunks(table, metadata), media_type=ARROW_STREAM, headers=headers_of(metadata)
    )
