"""A source API answer that trickles in is cut at the request timeout, not read for ever.

httpx's (and requests') timeout bounds each read, so an answer sending a byte now and then (a stalled
proxy) held a Jira or Keboola call, and its sync or webhook worker, for as long as it
trickled: with a 0.5 s timeout, a 400-byte answer at a byte every 0.1 s took 40 s.

What is checked is how far the server got (no answer is sent to its end), not the
call's wall time: on a busy machine a call (with the BigQuery client's first import)
takes seconds of its own, and a bound on it failed there."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.errors import TransientSyncError
from connectors.bigquery.connector import BigQueryConnector
from connectors.jira.client import JiraClient
from connectors.jira.options import JiraOptions
from connectors.keboola.client import StorageClient

BODY = b'{"pad": "' + b"x" * 390 + b'"}'


class TricklingServer:
    """Answers every request 200 with a JSON body sent one byte every 0.1 s, and counts
    the most bytes of the body one answer got to (before sending them: a client that read
    the whole body finds it counted)."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.most_sent = 0
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(BODY)
            )
            try:
                conn.sendall(head)
                for sent, byte in enumerate(BODY, start=1):
                    if self.stopped.wait(0.1):  # the pace of the trickle
                        return
                    with self._lock:
                        self.most_sent = max(self.most_sent, sent)
                    conn.sendall(bytes([byte]))
            except OSError:  # the client gave up
                return

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def trickling() -> Iterator[TricklingServer]:
    server = TricklingServer()
    try:
        yield server
    finally:
        server.close()


def test_a_trickling_jira_answer_fails_the_call_at_its_timeout(
    trickling: TricklingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_TEST_TOKEN", "jira-secret-token")
    options = JiraOptions.model_validate(
        {
            "url": trickling.url,
            "email": "bot@example.com",
            "token_env": "JIRA_TEST_TOKEN",
            "projects": ["ENG"],
            "timeout_seconds": 0.5,
        }
    )
    client = JiraClient(options, attempts=2, sleep=lambda _: None)
    try:
        with pytest.raises(TransientSyncError) as caught:
            client.get("/rest/api/3/myself")
    finally:
        client.close()
    assert 0 < trickling.most_sent < len(BODY)  # cut while it trickled
    assert "ReadTimeout" in caught.value.message
    assert "jira-secret-token" not in caught.value.message


def test_a_trickling_keboola_answer_fails_the_call_at_its_timeout(
    trickling: TricklingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KBC_TEST_TOKEN", "kbc-secret-token")
    client = StorageClient(
        trickling.url, "KBC_TEST_TOKEN", attempts=2, timeout=0.5, sleep=lambda _: None
    )
    try:
        with pytest.raises(TransientSyncError) as caught:
            client.get("/v2/storage/tokens/verify")
    finally:
        client.close()
    assert 0 < trickling.most_sent < len(BODY)
    assert "ReadTimeout" in caught.value.message
    assert "kbc-secret-token" not in caught.value.message


def test_a_trickling_keboola_slice_manifest_fails_at_its_timeout(
    trickling: TricklingServer,
) -> None:
    """A sliced export's manifest is read from a signed URL with the file client, which had
    no whole-answer deadline: a trickling manifest held the sync for as long as it trickled
    (40 s here)."""
    client = StorageClient(
        trickling.url, "KBC_TEST_TOKEN", attempts=2, timeout=0.5, sleep=lambda _: None
    )
    try:
        with pytest.raises(TransientSyncError) as caught:
            client.fetch_json(f"{trickling.url}/exp-15/1001/manifest?X-Amz-Signature=secret-sig")
    finally:
        client.close()
    assert 0 < trickling.most_sent < len(BODY)  # cut while it trickled
    assert "ReadTimeout" in caught.value.message
    assert "secret-sig" not in caught.value.message


def test_a_trickling_keboola_slice_download_fails_at_its_timeout(
    trickling: TricklingServer, tmp_path: Path
) -> None:
    """A slice download kept only the per-read timeout: one trickling in (a byte now and
    then) held the sync until it ended, here 40 s for 400 bytes, and for ever for a slice
    of a few megabytes. A download now brings a chunk every http_timeout_seconds."""
    client = StorageClient(
        trickling.url, "KBC_TEST_TOKEN", attempts=2, timeout=0.5, sleep=lambda _: None
    )
    try:
        with pytest.raises(TransientSyncError) as caught:
            client.download(
                f"{trickling.url}/exp-15/1001/slice_0_0_0.csv.gz?X-Amz-Signature=secret-sig",
                tmp_path / "slice",
            )
    finally:
        client.close()
    assert 0 < trickling.most_sent < len(BODY)  # cut while it trickled
    assert "ReadTimeout" in caught.value.message
    assert "secret-sig" not in caught.value.message


def test_a_trickling_bigquery_answer_fails_the_call_at_its_timeout(
    trickling: TricklingServer, tmp_path: Path
) -> None:
    """The client library's ``timeout`` bounds each read too: with http_timeout_seconds
    0.5, describing a table against a trickling endpoint took 44 s."""
    connector = BigQueryConnector(
        SourceContext(
            "bq",
            {
                "project": "example-project",
                "api_endpoint": trickling.url,
                "anonymous": True,
                "http_timeout_seconds": 0.5,
            },
            tmp_path,
        )
    )
    request = TableRequest(id="t", bucket="sales", source_table="orders", query_mode="remote")
    with pytest.raises(TransientSyncError, match=r"had not fully arrived 0\.5 s after"):
        connector.describe_table(request)
    assert 0 < trickling.most_sent < len(BODY)
