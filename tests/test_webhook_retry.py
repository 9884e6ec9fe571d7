"""Webhook work a source could not take now is tried again later: with backoff, and never
before the pause the source asked for (its Retry-After)."""

from __future__ import annotations

import time
from collections.abc import Hashable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from agnes_mcp.services import Services
from agnes_mcp.webhook_apply import SourceWorker
from agnes_sync.connector import WebhookOutcome
from agnes_sync.errors import TransientSyncError


class _Connector:
    def __init__(self, answer: WebhookOutcome | Exception) -> None:
        self.answer = answer

    def apply_webhook(self, work: list[Hashable], writer: Any) -> WebhookOutcome:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _worker(tmp_path: Path, answer: WebhookOutcome | Exception) -> SourceWorker:
    services = SimpleNamespace(
        sources=SimpleNamespace(connector=lambda source: _Connector(answer)),
        settings=SimpleNamespace(extracts_dir=tmp_path),
        orchestrator=None,
    )
    return SourceWorker("jira_src", cast(Services, services), retry_seconds=2.0)


def _delay(worker: SourceWorker) -> float:
    (due, _, _, _), *_ = worker._later
    return due - time.monotonic()


def test_items_the_source_could_not_take_wait_the_pause_it_asked_for(tmp_path: Path) -> None:
    worker = _worker(tmp_path, WebhookOutcome(retry=("ENG-1",), retry_after_seconds=600))
    worker._apply([("ENG-1", 0)])
    assert 590 < _delay(worker) <= 600


def test_a_failed_batch_waits_the_pause_too(tmp_path: Path) -> None:
    refused = TransientSyncError("rate limited", details={"retry_after_seconds": 300})
    worker = _worker(tmp_path, refused)
    worker._apply([("ENG-1", 0), ("ENG-2", 0)])
    assert len(worker._later) == 2 and 290 < _delay(worker) <= 300


def test_without_a_pause_the_backoff_applies(tmp_path: Path) -> None:
    worker = _worker(tmp_path, WebhookOutcome(retry=("ENG-1",)))
    worker._apply([("ENG-1", 0)])
    assert 0 < _delay(worker) <= 2.0
