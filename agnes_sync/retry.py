"""Retrying transient sync failures with exponential backoff; terminal ones fail at once.

A source that says how long to wait (``Retry-After``, carried by the error as
``retry_after_seconds``) is not called again sooner; past :data:`LONGEST_WAIT` the sync
fails now and the next one (scheduled, or a webhook's) calls again.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from agnes_sync.errors import SyncError

logger = logging.getLogger("agnes.sync")
T = TypeVar("T")
LONGEST_WAIT = 300.0  # seconds a sync waits in place for a source that asked for a pause
# The longest pause a source's answer is believed to ask for: a header saying a century
# (or a number too long to be one) is a day; nothing waits, or is kept waiting, longer.
LONGEST_ASKED = 86_400.0


def asked_pause(seconds: float) -> float:
    """A pause a source asked for, as kept: at least 0, at most :data:`LONGEST_ASKED`
    (an infinite or not-a-number one too: no timer takes those)."""
    if math.isnan(seconds):
        return LONGEST_ASKED
    return min(max(0.0, seconds), LONGEST_ASKED)


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), as
    :func:`asked_pause` keeps them; None when there is none or it does not parse."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return asked_pause(float(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return asked_pause((when - datetime.now(UTC)).total_seconds())


def pause_before_retry(asked: float | None, backoff: float) -> float:
    """Seconds to wait before calling a source again: the pause it asked for, else our
    own ``backoff`` (as urllib3 does). A ``Retry-After: 0`` (or a date or rate-limit
    reset already past) asks for no pause: it is not a licence to call again at once,
    and again, until the attempts run out."""
    return asked if asked else backoff


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
            delay = pause_before_retry(asked, backoff_seconds * 2 ** (attempt - 1))
            logger.warning(
                "transient sync failure (attempt %d/%d): %s; retrying in %.1fs",
                attempt,
                attempts,
                exc.message,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")
