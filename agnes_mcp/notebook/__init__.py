"""Agnes in Jupyter: ``from agnes_mcp.notebook import connect``; ``%load_ext agnes_mcp.notebook``.

Importing this package is cheap: the backend, pyarrow and IPython load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agnes_mcp.notebook.connection import connect
    from agnes_mcp.notebook.refusal import AgnesRefusal
    from agnes_mcp.notebook.result import (
        MissingExtra,
        PullIncompleteWarning,
        Result,
        RoundedValuesWarning,
        TruncatedResultWarning,
    )
    from agnes_mcp.notebook.workspace import Workspace

__all__ = [
    "AgnesRefusal",
    "MissingExtra",
    "PullIncompleteWarning",
    "Result",
    "RoundedValuesWarning",
    "TruncatedResultWarning",
    "Workspace",
    "connect",
]

_EXPORTS = {
    "connect": "agnes_mcp.notebook.connection",
    "AgnesRefusal": "agnes_mcp.notebook.refusal",
    "Result": "agnes_mcp.notebook.result",
    "RoundedValuesWarning": "agnes_mcp.notebook.result",
    "MissingExtra": "agnes_mcp.notebook.result",
    "PullIncompleteWarning": "agnes_mcp.notebook.result",
    "TruncatedResultWarning": "agnes_mcp.notebook.result",
    "Workspace": "agnes_mcp.notebook.workspace",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agnes_mcp.notebook' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext agnes_mcp.notebook``: registers ``%agnes`` and ``%%agnes_sql``."""
    from agnes_mcp.notebook.magics import register

    register(ipython)
