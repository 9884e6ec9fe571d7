"""Retrying transient sync failures with exponential backoff; terminal ones fail at once.

A source that says how long to wait (``Retry-After``, carried by the error as
``retry_after_seconds``) is not called again sooner; past :data:`LONGEST_WAIT` the sync
fails now and the next one (scheduled, or a webhook's) calls again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from agnes_sync.errors import SyncError

logger = logging.getLogger("agnes.sync")
T = TypeVar("T")
LONGEST_WAIT = 300.0  # seconds a sync waits in place for a source that asked for a pause


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int = 3,
    backoff_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """Run ``action``; retry :class:`SyncError` marked transient. Returns (result, attempts)."""
    for attempt in range(1, attempts + 1):
        try:
            return action(), attempt
        except SyncError as exc:
            asked = exc.retry_after_seconds or 0.0
            if not exc.transient or attempt == attempts or asked > LONGEST_WAIT:
                exc.details.setdefault("attempts", attempt)
                raise
            delay = max(backoff_seconds * 2 ** (attempt - 1), asked)
            logger.warning(
                "transient sync failure (attempt %d/%d): %s; retrying in %.1fs",
                attempt,
                attempts,
                exc.message,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")
