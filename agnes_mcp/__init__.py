"""Agnes server: settings, system store, auth, RBAC, HTTP API and the MCP server."""

from __future__ import annotations

import functools


@functools.cache
def _version() -> str:
    # importlib.metadata costs ~15 ms to import: only what asks for the version pays it
    # (a workspace's `agnes query` imports this package and never does)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agnes")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
