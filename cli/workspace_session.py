"""Opening the workspace backend for a CLI command: the workspace folder (``--workspace``,
else the nearest folder holding ``.agnes/``) and the server.

A command that works in a workspace never makes one: with no workspace here (or above),
or a ``--workspace`` that is not one, it is refused (``no_workspace``, exit 3) and nothing
is created; only ``agnes init`` makes a workspace.

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
    from agnes_sync.workspace.layout import WorkspacePaths


def workspace_paths(args: argparse.Namespace) -> WorkspacePaths:
    """The workspace the command works in (``--workspace``, else the enclosing one), or
    :class:`~agnes_sync.workspace.layout.NoWorkspace`."""
    from agnes_sync.workspace.layout import require_workspace

    return require_workspace(getattr(args, "workspace", None), Path.cwd())


def named_workspace(args: argparse.Namespace) -> Path | None:
    """``--workspace``, checked to be a workspace, for a command that can also run outside
    one (None when it was not given)."""
    return workspace_paths(args).root if getattr(args, "workspace", None) else None


@contextmanager
def open_backend(args: argparse.Namespace) -> Iterator[WorkspaceBackend]:
    from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
    from agnes_sync.server_api import ServerApi

    paths = workspace_paths(args)
    credentials = resolve(args.server_url, args.token, workspace=paths.root)
    backend = WorkspaceBackend(
        paths, ServerApi(credentials.server_url, credentials.token, agent="agnes-cli")
    )
    try:
        yield backend
    finally:
        backend.close()
