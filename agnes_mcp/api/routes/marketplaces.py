"""Admin: plugin marketplaces (git repositories in Claude Code's marketplace format)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/admin/marketplaces", tags=["admin: marketplaces"])
