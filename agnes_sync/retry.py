"""Retrying transient sync failures with exponential backoff; terminal ones fail at once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from agnes_sync.errors import SyncError

logger = logging.getLogger("agnes.sync")
T = TypeVar("T")


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
            if not exc.transient or attempt == attempts:
                exc.details.setdefault("attempts", attempt)
                raise
            delay = backoff_seconds * 2 ** (attempt - 1)
            logger.warning(
                "transient sync failure (attempt %d/%d): %s; retrying in %.1fs",
                attempt,
                attempts,
                exc.message,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")
