"""``%agnes`` and ``%%agnes_sql`` (placeholder: the magics land next)."""

from __future__ import annotations

from typing import Any


def register(ipython: Any) -> None:
    raise NotImplementedError("the magics are not built yet")
