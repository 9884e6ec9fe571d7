"""The server's own log lines (every logger under ``agnes``) on stderr, written like
uvicorn's (``INFO:     ...``) and filtered by the ``log_level`` setting.

Only uvicorn's loggers were set up: Agnes's lines reached Python's last-resort handler,
which dropped every info line (a sync retried, a data dir relocated, "Agnes stopped") and
printed every warning bare, without its level, whatever ``log_level`` said.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from uvicorn.logging import DefaultFormatter

SERVER_LOGGER = "agnes"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to the ``sys.stderr`` of the moment (a test's capture, a redirection)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler's own assignment
        pass


@contextmanager
def server_log() -> Iterator[None]:
    """While a server command runs: the ``agnes`` loggers' lines on stderr, warnings and
    above until :func:`set_server_log_level` is given the settings' level. Afterwards the
    loggers are as they were (a test process running a command keeps its own logging)."""
    logger = logging.getLogger(SERVER_LOGGER)
    level = logger.level
    handler = _StderrHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def set_server_log_level(level: str) -> None:
    """Show the server's lines at ``level`` (``debug``, ``info``, ``warning``, ``error``)
    and above; inside :func:`server_log`."""
    logging.getLogger(SERVER_LOGGER).setLevel(level.upper())
