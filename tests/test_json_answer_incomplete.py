"""A JSON answer that fails after its first rows were sent (its status, 200, is already
out): the body ends where no reader takes it for a whole, smaller answer, the connection
closes before HTTP's end of the body, and the server logs it.

Before, the body just stopped: strict parsers failed, but one that closes what is left
open (as streaming and agent clients do) read the rows sent so far as the whole answer,
with no truncation note (that follows the rows)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pytest

from agnes_mcp.api import arrow_stream, json_stream
from agnes_mcp.api.arrow_stream import ARROW_STREAM
from agnes_mcp.rails.results import Provenance, QueryResult
from agnes_sync.server_api import AnswerIncomplete, ServerApi
from tests.conftest import LiveServer

SQL = "SELECT range AS i, repeat('x', 500) AS s FROM range(20000)"


def _failing_on_the_third_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    real = json_stream.rows_of
    slices: list[int] = []

    def rows_of(piece: pa.Table) -> list[list[Any]]:
        slices.append(piece.num_rows)
        if len(slices) == 3:
            raise RuntimeError("the rendering failed")
        return real(piece)

    monkeypatch.setattr(json_stream, "rows_of", rows_of)


def _closed(body: bytes) -> Any:
    """What a lenient reader makes of ``body``: whatever is left open, closed."""
    text = body.decode().rstrip(",")
    stack = []
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
        elif char in "]}":
            stack.pop()
    return json.loads(text + "".join(reversed(stack)))


def test_a_failure_mid_body_ends_it_unparseable_and_closes_the_connection(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _failing_on_the_third_slice(monkeypatch)
    received = b""
    with (
        caplog.at_level(logging.ERROR, logger="agnes.api"),
        live_server.client(live_server.admin_token) as client,
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/api/query", json={"sql": SQL, "limit": 20000}) as answer,
    ):
        assert answer.status_code == 200
        for chunk in answer.iter_raw():
            received += chunk
    assert received.startswith(b'{"columns":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(received)
    read = _closed(received)  # a lenient reader finds the error, not a smaller answer
    assert read["error"]["code"] == "answer_incomplete"
    sent = len(read["rows"])
    assert 0 < sent < 20000 and f"after {sent:,} of its 20,000 rows" in read["error"]["message"]
    assert any("JSON answer failed after" in r.getMessage() for r in caplog.records)


def test_the_end_follows_whole_rows_wherever_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failing while the rows are rendered, or while what is said of them is: the rows
    sent are whole, and the body never parses."""
    table = pa.table({"i": list(range(3000))})

    def described(shown: int, cut: bool) -> QueryResult:
        if shown:
            raise RuntimeError("describing failed")
        provenance = Provenance(
            tables=[], engine="duckdb", bytes_scanned=0, row_count=0, duration_ms=0, fingerprint=""
        )
        return QueryResult(columns=[], rows=[], row_count=0, truncated=False, provenance=provenance)

    chunks: Iterator[bytes] = json_stream.json_chunks(table, None, described)
    body = b""
    with pytest.raises(RuntimeError, match="describing failed"):
        for chunk in chunks:
            body += chunk
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    read = _closed(body)
    assert len(read["rows"]) == 3000 and read["error"]["code"] == "answer_incomplete"


def _arrow_body(rows: int, said: int, batches_sent: int) -> bytes:
    """An Arrow answer of ``rows`` whose metadata says ``said``, cut after
    ``batches_sent`` batches (no end marker)."""
    table = pa.table({"i": list(range(rows))})
    schema = table.schema.with_metadata({b"agnes.row_count": str(said).encode()})
    sink = io.BytesIO()
    writer = pa.ipc.new_stream(sink, schema)
    for batch in table.to_batches(max_chunksize=rows // 4 or 1)[:batches_sent]:
        writer.write_batch(batch)
    return sink.getvalue()


def test_an_arrow_answer_cut_between_batches_is_not_taken_for_a_smaller_one() -> None:
    """An Arrow stream's end marker is optional: one cut between two batches read as a
    whole, smaller answer. The row count sent ahead of the rows tells them apart."""
    api = ServerApi("http://127.0.0.1:9", None)
    cut = httpx.Response(200, headers={"content-type": ARROW_STREAM}, content=_arrow_body(8, 8, 2))
    with pytest.raises(AnswerIncomplete, match="ended after 4 of its 8 rows"):
        api._arrow(cut, "/api/query")
    whole = httpx.Response(
        200, headers={"content-type": ARROW_STREAM}, content=_arrow_body(8, 8, 4)
    )
    table, metadata = api._arrow(whole, "/api/query")
    assert table.num_rows == 8 and metadata["row_count"] == 8


def test_an_arrow_answer_failing_mid_body_closes_the_connection_and_is_logged(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = pa.Table.to_batches

    def failing(table: pa.Table, *args: Any, **kwargs: Any) -> Iterator[pa.RecordBatch]:
        for index, batch in enumerate(real(table, *args, **kwargs)):
            if index == 1:
                raise RuntimeError("the encoding failed")
            yield batch

    monkeypatch.setattr(arrow_stream, "_batches", failing)
    with (
        caplog.at_level(logging.ERROR, logger="agnes.api"),
        live_server.client(live_server.admin_token) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.post(
            "/api/query",
            json={"sql": "SELECT range AS i FROM range(200000)", "limit": 200000},
            headers={"Accept": ARROW_STREAM},
        )
    logged = [r.getMessage() for r in caplog.records if "Arrow answer failed" in r.getMessage()]
    assert len(logged) == 1
    sent, total = re.findall(r"after ([\d,]+) of its ([\d,]+) rows", logged[0])[0]
    assert 0 < int(sent.replace(",", "")) < int(total.replace(",", ""))
