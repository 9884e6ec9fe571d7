"""Mounting the admin app into the server's FastAPI app (being built)."""

from __future__ import annotations

from typing import Any


def install(app: Any, services: Any) -> None:
    """Add the Panel pages under /admin."""
