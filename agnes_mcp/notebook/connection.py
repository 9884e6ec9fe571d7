"""``connect()``: find the workspace like the CLI does, or work outside one.

Inside a workspace (the folder given, else the current one, or the nearest folder above
holding ``.agnes/``) the workspace's own credentials are used, as ``agnes`` commands
there do. Outside any, ``server_url`` and ``token`` (else ``AGNES_SERVER_URL`` and
``AGNES_TOKEN``, else ``agnes login``'s default) name the server, and tables are read
through it (:mod:`agnes_mcp.notebook.outside`).
"""

from __future__ import annotations

import os
from pathlib import Path

from agnes_mcp.notebook.refusal import AgnesRefusal
from agnes_mcp.notebook.workspace import Workspace

AGENT = "agnes-notebook"


def _workspace_above(start: Path) -> Path | None:
    from agnes_sync.workspace.layout import DOT

    for folder in (start, *start.parents):
        if (folder / DOT).is_dir():
            return folder
    return None


def connect(
    path: str | Path | None = None,
    *,
    server_url: str | None = None,
    token: str | None = None,
) -> Workspace:
    """Agnes from a notebook: ``ws = connect()``."""
    from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
    from agnes_mcp.notebook.cache_prune import open_cache
    from agnes_mcp.notebook.outside import OutsideWorkspaceBackend, cache_folder
    from agnes_sync.credentials import CredentialsError, resolve
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths

    start = Path(path).expanduser().resolve() if path is not None else Path.cwd().resolve()
    if start.is_file():  # a notebook's own path: its folder
        start = start.parent
    elif not start.is_dir():  # a typo must not fall back to the server and your default token
        raise AgnesRefusal(
            "folder_not_found",
            f"There is no folder {start}.",
            hint="Give a folder in your workspace, or connect() with no path for the "
            "current folder.",
        )
    root = _workspace_above(start)
    arguments = ("connect(server_url=...)", "connect(token=...)")  # not the CLI's flags
    try:
        if root is not None:
            credentials = resolve(server_url, token, workspace=root, given_as=arguments)
        else:
            credentials = resolve(server_url, token, outside=True, given_as=arguments)
    except CredentialsError as exc:
        raise AgnesRefusal("credentials_invalid", str(exc)) from exc
    if credentials.token is None:
        named = server_url is not None or bool(os.environ.get("AGNES_SERVER_URL"))
        raise AgnesRefusal(
            "no_token",
            f"No token for {credentials.server_url}."
            if named
            else "No Agnes server or token is set (and this folder is in no workspace).",
            hint="connect(server_url=..., token=...), set AGNES_SERVER_URL and AGNES_TOKEN, "
            "or run 'agnes init' in a folder to make it a workspace.",
        )
    api = ServerApi(credentials.server_url, credentials.token, agent=AGENT, timeout=300)
    if root is not None:
        return Workspace(WorkspaceBackend(WorkspacePaths(root), api), kind="workspace")
    # marked used; the cache's folders unused for 30 days removed (notebook/cache_prune.py)
    folder = open_cache(cache_folder(credentials.server_url, credentials.token))
    return Workspace(OutsideWorkspaceBackend(WorkspacePaths(folder), api), kind="outside")
