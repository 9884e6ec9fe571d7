"""A test hook: stop a pull at a named stage, so that a test can SIGKILL it right there.

Off unless the environment variable ``AGNES_TEST_PAUSE_AT`` names a stage; it is read once,
when this module is imported, and otherwise each stage costs a string comparison. When a
pull reaches the named stage for the first time, it writes ``agnes-test-paused <stage>``
to stderr and waits forever, for the test's kill (``tests/test_pull.py``). Stages:

- ``partial-written``: some bytes of a download, not all, are in its partial file (flushed);
- ``range-written``: one range of a ranged download and its ``.ranges`` record are written;
- ``before-rename``: a download is whole and its hash verified, not yet renamed into place;
- ``between-files``: a file is in place, the next one not yet started (with ``--jobs 1``);
- ``before-state``: every file is in place, the pull state not yet written.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import IO

STAGE = os.environ.get("AGNES_TEST_PAUSE_AT") or None
_once = threading.Lock()


def pause(stage: str, written: IO[bytes] | None = None) -> None:
    """Wait here forever if the test asked to stop at ``stage`` (after flushing ``written``)."""
    if stage != STAGE or not _once.acquire(blocking=False):
        return
    if written is not None:
        written.flush()
    sys.stderr.write(f"agnes-test-paused {stage}\n")
    sys.stderr.flush()
    threading.Event().wait()
