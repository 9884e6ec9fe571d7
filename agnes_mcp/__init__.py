"""Agnes server: settings, system store, auth, RBAC, HTTP API and the MCP server."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agnes")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
