"""Opening the workspace backend for a CLI command: the workspace folder (``--workspace``,
else the nearest folder holding ``.agnes/``, else the current one) and the server.

``with open_backend(args) as backend:`` closes the backend (its local DuckDB and its HTTP
client) however the command ends.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from agnes_sync.credentials import resolve

if TYPE_CHECKING:
    from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend


@contextmanager
def open_backend(args: argparse.Namespace) -> Iterator[WorkspaceBackend]:
    from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths, find_workspace

    explicit = getattr(args, "workspace", None)
    paths = WorkspacePaths(Path(explicit).resolve()) if explicit else find_workspace(Path.cwd())
    credentials = resolve(args.server_url, args.token, workspace=paths.root)
    backend = WorkspaceBackend(
        paths, ServerApi(credentials.server_url, credentials.token, agent="agnes-cli")
    )
    try:
        yield backend
    finally:
        backend.close()
