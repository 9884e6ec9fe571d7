"""The feed's routes: ``/marketplace.zip``, ``/marketplace.git/...`` (smart HTTP, read-only)
and ``/api/marketplace/info``, each behind the caller's personal access token."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["marketplace"])
