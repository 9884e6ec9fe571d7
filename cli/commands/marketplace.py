"""``agnes marketplace info|refresh``: the Claude Code plugins the server grants you.

``info`` lists them (``GET /api/marketplace/info``). ``refresh`` brings the workspace's
copy of the feed (``.agnes/marketplace/``, a git clone of ``<server>/marketplace.git``)
up to date, says which plugins came and went, and asks Claude Code (when ``claude`` is
on PATH) to update its own copy of the marketplace.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agnes_sync.credentials import CredentialsError, resolve
from agnes_sync.workspace.marketplace_copy import MarketplaceUnavailable
from cli import exit_codes
from cli.output import emit, print_message

if TYPE_CHECKING:
    from agnes_sync.server_api import ServerApi

INFO = "/api/marketplace/info"
COLUMNS = [
    ("name", "plugin"),
    ("marketplace", "from"),
    ("version", "version"),
    ("description", "description"),
]
CLAUDE_TIMEOUT_SECONDS = 120


def fetch_info(api: ServerApi) -> dict[str, Any] | None:
    """The caller's feed (``GET /api/marketplace/info``), or None when the server has no
    marketplace route (a server older than the marketplace)."""
    from agnes_sync.server_api import ServerError

    try:
        info: dict[str, Any] = api.get(INFO)
    except ServerError as exc:
        if exc.status == 404 and exc.code == "route_not_found":
            return None
        raise
    return info


def _no_marketplace(server_url: str) -> MarketplaceUnavailable:
    return MarketplaceUnavailable(
        f"The server at {server_url} serves no plugin marketplace (it is older than the "
        "marketplace)."
    )


def _api(args: argparse.Namespace) -> tuple[ServerApi, str, str | None, Path | None]:
    from agnes_sync.server_api import ServerApi

    credentials = resolve(args.server_url, args.token, workspace=getattr(args, "workspace", None))
    api = ServerApi(credentials.server_url, credentials.token, agent="agnes-cli", timeout=60)
    return api, credentials.server_url, credentials.token, credentials.workspace


def info(args: argparse.Namespace) -> int:
    api, server_url, _, _ = _api(args)
    with closing(api):
        feed = fetch_info(api)
    if feed is None:
        raise _no_marketplace(server_url)
    plugins = feed["plugins"]
    message = (
        f"Marketplace '{feed['marketplace']}': {len(plugins)} plugin(s) granted to you.\n"
        f"  Claude Code: claude plugin marketplace add {feed['git_url']}"
    )
    emit(feed, as_json=args.json, rows=plugins, columns=COLUMNS, message=message)
    return exit_codes.OK


def _claude_update(name: str) -> dict[str, Any]:
    """Ask Claude Code to update its copy of the marketplace, when it is installed."""
    claude = shutil.which("claude")
    if claude is None:
        return {"ran": False, "ok": None, "message": "claude is not on PATH; not updated"}
    command = [claude, "plugin", "marketplace", "update", name]
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            command,
            capture_output=True,
            text=True,
            timeout=CLAUDE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ran": True, "ok": False, "message": f"{' '.join(command[1:])}: {exc}"}
    said = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    last = said[-1] if said else f"exit code {done.returncode}"
    return {"ran": True, "ok": done.returncode == 0, "message": last}


def refresh(args: argparse.Namespace) -> int:
    from agnes_sync.workspace.layout import WorkspacePaths
    from agnes_sync.workspace.marketplace_copy import refresh_copy

    api, server_url, token, workspace = _api(args)
    if workspace is None:
        api.close()
        raise argparse.ArgumentTypeError(
            "agnes marketplace refresh runs in a workspace (a folder set up with 'agnes "
            "init'): run it there, or pass --workspace W"
        )
    paths = WorkspacePaths(workspace)
    if not token:
        raise CredentialsError(
            f"No token for {server_url}: pass --token, set AGNES_TOKEN or run 'agnes init'."
        )
    with closing(api):
        feed = fetch_info(api)
    if feed is None:
        raise _no_marketplace(server_url)
    copy = refresh_copy(paths, feed["git_url"], token)
    claude = _claude_update(feed["marketplace"])
    summary = {
        "marketplace": feed["marketplace"],
        "git_url": feed["git_url"],
        "path": str(copy.path),
        "commit": copy.commit,
        "cloned": copy.cloned,
        "plugins": copy.plugins,
        "added": copy.added,
        "removed": copy.removed,
        "claude": claude,
    }
    if args.json:
        emit(summary, as_json=True)
    elif not getattr(args, "quiet", False):
        print_message(_refresh_text(summary))
    return exit_codes.OK


def _refresh_text(summary: dict[str, Any]) -> str:
    what = "cloned" if summary["cloned"] else "refreshed"
    lines = [
        f"Marketplace '{summary['marketplace']}' {what} in {summary['path']} "
        f"(commit {summary['commit'][:12]}): {len(summary['plugins'])} plugin(s).",
    ]
    if summary["added"]:
        lines.append(f"  added: {', '.join(summary['added'])}")
    if summary["removed"]:
        lines.append(f"  removed: {', '.join(summary['removed'])}")
    if not summary["added"] and not summary["removed"] and not summary["cloned"]:
        lines.append("  no plugin came or went since the last refresh")
    claude = summary["claude"]
    if not claude["ran"]:
        lines.append(f"  Claude Code: {claude['message']}")
    elif claude["ok"]:
        lines.append(f"  Claude Code: updated ({claude['message']})")
    else:
        lines.append(
            f"  Claude Code: update failed: {claude['message']} (not added to Claude Code "
            f"yet? claude plugin marketplace add {summary['git_url']})"
        )
    return "\n".join(lines)
