"""The server's own log lines (every logger under ``agnes``) on stderr, written like
uvicorn's (``INFO:     ...``) and filtered by the ``log_level`` setting.

Only uvicorn's loggers were set up: Agnes's lines reached Python's last-resort handler,
which dropped every info line (a sync retried, a data dir relocated, "Agnes stopped") and
printed every warning bare, without its level, whatever ``log_level`` said.
"""

from __future__ import annotations

import logging
import sys
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


def configure_server_log(level: str) -> None:
    """Show the ``agnes`` loggers' lines at ``level`` (``debug``, ``info``, ``warning``,
    ``error``) and above; calling it again only changes the level."""
    logger = logging.getLogger(SERVER_LOGGER)
    logger.setLevel(level.upper())
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
        logger.addHandler(handler)
