"""``agnes marketplace info|refresh``: the Claude Code plugins the server grants you.

``info`` lists them (``GET /api/marketplace/info``). ``refresh`` brings the workspace's
copy of the feed (``.agnes/marketplace/``, a git clone of ``<server>/marketplace.git``)
up to date, says which plugins came and went, and moves Claude Code's own clone of the
marketplace to the same commit (a fast-forward ``git pull``, which Claude Code runs,
cannot follow a feed whose grants changed). The ``SessionStart`` hook of ``agnes init``
runs it with ``--quiet``.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agnes_sync.credentials import CredentialsError, resolve
from agnes_sync.workspace.marketplace_copy import MarketplaceUnavailable
from cli import exit_codes
from cli.output import counted, emit, print_message
from cli.workspace_session import named_workspace, workspace_paths

if TYPE_CHECKING:
    from agnes_sync.server_api import ServerApi

INFO = "/api/marketplace/info"
COLUMNS = [
    ("name", "plugin"),
    ("marketplace", "from"),
    ("version", "version"),
    ("description", "description"),
]


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


def _api(
    args: argparse.Namespace, workspace: Path | None
) -> tuple[ServerApi, str, str | None, Path | None]:
    from agnes_sync.server_api import ServerApi

    credentials = resolve(args.server_url, args.token, workspace=workspace)
    api = ServerApi(credentials.server_url, credentials.token, agent="agnes-cli", timeout=60)
    return api, credentials.server_url, credentials.token, credentials.workspace


def info(args: argparse.Namespace) -> int:
    api, server_url, _, _ = _api(args, named_workspace(args))
    with closing(api):
        feed = fetch_info(api)
    if feed is None:
        raise _no_marketplace(server_url)
    plugins = feed["plugins"]
    message = (
        f"Marketplace '{feed['marketplace']}': {counted(len(plugins), 'plugin')} granted to you.\n"
        f"  Claude Code: claude plugin marketplace add {feed['git_url']}"
    )
    emit(feed, as_json=args.json, rows=plugins, columns=COLUMNS, message=message)
    return exit_codes.OK


def refresh(args: argparse.Namespace) -> int:
    from agnes_sync.workspace.claude_marketplace_clone import bring_to_feed
    from agnes_sync.workspace.marketplace_copy import refresh_copy

    quiet = getattr(args, "quiet", False)
    paths = workspace_paths(args)  # it runs in a workspace, and never makes one
    api, server_url, token, _ = _api(args, paths.root)
    if not token:
        raise CredentialsError(
            f"No token for {server_url}: pass --token, set AGNES_TOKEN or run 'agnes init'."
        )
    with closing(api):
        feed = fetch_info(api)
    if feed is None:
        if quiet and not args.json:
            return exit_codes.OK  # the session-start hook on an older server: nothing to do
        raise _no_marketplace(server_url)
    copy = refresh_copy(paths, feed["git_url"], token)
    clone = bring_to_feed(feed["marketplace"], feed["git_url"], token)
    summary = {
        "marketplace": feed["marketplace"],
        "git_url": feed["git_url"],
        "path": str(copy.path),
        "commit": copy.commit,
        "cloned": copy.cloned,
        "plugins": copy.plugins,
        "added": copy.added,
        "removed": copy.removed,
        "claude_clone": clone.as_dict(),
    }
    failed = clone.outcome == "failed"
    if args.json:
        emit(summary, as_json=True)
    elif not quiet:
        print_message(_refresh_text(summary))
    elif failed:
        sys.stderr.write(f"error: Claude Code's clone {clone.path}: {clone.message}\n")
    return exit_codes.FAILURE if failed else exit_codes.OK


def _claude_text(summary: dict[str, Any]) -> str:
    clone = summary["claude_clone"]
    if clone["outcome"] == "absent":
        return (
            "  Claude Code: marketplace not added yet (it is offered when you trust this "
            f"folder; or: claude plugin marketplace add {summary['git_url']})"
        )
    return f"  Claude Code's clone {clone['path']}: {clone['message']}"


def _refresh_text(summary: dict[str, Any]) -> str:
    what = "cloned" if summary["cloned"] else "refreshed"
    lines = [
        f"Marketplace '{summary['marketplace']}' {what} in {summary['path']} "
        f"(commit {summary['commit'][:12]}): {counted(len(summary['plugins']), 'plugin')}.",
    ]
    if summary["added"]:
        lines.append(f"  added: {', '.join(summary['added'])}")
    if summary["removed"]:
        lines.append(f"  removed: {', '.join(summary['removed'])}")
    if not summary["added"] and not summary["removed"] and not summary["cloned"]:
        lines.append("  no plugin came or went since the last refresh")
    lines.append(_claude_text(summary))
    return "\n".join(lines)
