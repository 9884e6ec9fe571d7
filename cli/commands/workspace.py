"""``agnes pull``, ``agnes push`` and ``agnes init``: keep a workspace in step with the
server and wire it for Claude Code."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agnes_sync.credentials import (
    CredentialsError,
    read_file,
    read_workspace_entry,
    resolve,
    write_file,
    write_workspace_entry,
)
from cli import exit_codes
from cli.output import emit, print_json, print_message, size

if TYPE_CHECKING:
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths


def _paths(args: argparse.Namespace) -> WorkspacePaths:
    from agnes_sync.workspace.layout import WorkspacePaths, find_workspace

    explicit = getattr(args, "workspace", None)
    return WorkspacePaths(Path(explicit).resolve()) if explicit else find_workspace(Path.cwd())


def _api(args: argparse.Namespace, paths: WorkspacePaths) -> ServerApi:
    from agnes_sync.server_api import ServerApi

    credentials = resolve(args.server_url, args.token, workspace=paths.root)
    return ServerApi(credentials.server_url, credentials.token, agent="agnes-cli", timeout=300)


def _pull_summary(summary: dict[str, Any], as_json: bool, quiet: bool) -> None:
    if as_json:
        print_json(summary)
        return
    failed = summary["failed"]
    if quiet and not failed:
        return
    verb = "would download" if summary["dry_run"] else "downloaded"
    print_message(
        f"{summary['tables']:,} tables: {verb} {summary['downloaded']:,} files "
        f"({size(summary['bytes'])}), {summary['unchanged']:,} unchanged, "
        f"{summary['removed']:,} removed, in {summary['seconds']} s."
    )
    for failure in failed:
        sys.stderr.write(f"failed: {failure['file']}: {failure['message']}\n")


def pull(args: argparse.Namespace) -> int:
    from agnes_sync.pull.progress import reporter_for
    from agnes_sync.pull.pull import pull as run_pull

    paths = _paths(args)
    with closing(_api(args, paths)) as api:
        summary = run_pull(
            paths,
            api,
            jobs=args.jobs,
            dry_run=args.dry_run,
            reporter=reporter_for(args.quiet, args.json),
        )
    _pull_summary(summary.as_dict(), args.json, args.quiet)
    return exit_codes.FAILURE if summary.failed else exit_codes.OK


def push(args: argparse.Namespace) -> int:
    from agnes_sync.push import push as run_push

    paths = _paths(args)
    with closing(_api(args, paths)) as api:
        summary = run_push(paths, api)
    data = summary.as_dict()
    if args.json:
        print_json(data)
    elif not args.quiet or summary.failed:
        print_message(
            f"uploaded {summary.uploaded:,} files ({size(summary.bytes)}), "
            f"{summary.unchanged:,} unchanged, in {data['seconds']} s."
        )
        for failure in summary.failed:
            sys.stderr.write(f"failed: {failure['file']}: {failure['message']}\n")
    return exit_codes.FAILURE if summary.failed else exit_codes.OK


def _agnes_command() -> str:
    """How Claude Code should start this agnes: its absolute path when known."""
    here = Path(sys.argv[0])
    if here.name == "agnes" and here.exists():
        return str(here.resolve())
    return shutil.which("agnes") or "agnes"


def _has_default() -> bool:
    try:
        return bool(read_file())
    except CredentialsError:
        return True  # there is one, unreadable: leave it as it is


def init(args: argparse.Namespace) -> int:
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace import claude_files

    paths = _paths(args)
    credentials = resolve(args.server_url, args.token, workspace=paths.root)
    if not credentials.token:
        raise argparse.ArgumentTypeError("agnes init needs --token (or AGNES_TOKEN)")
    with closing(
        ServerApi(credentials.server_url, credentials.token, agent="agnes-cli", timeout=300)
    ) as api:
        me = api.whoami()  # the token works before anything is written
        rails = api.get("/api/workspace/instructions")["claude_md"]
        before = read_workspace_entry(paths.root)
        stored = write_workspace_entry(
            paths.root, credentials.server_url, credentials.token, me["email"]
        )
        # A first init also gives the user a default (for commands outside workspaces);
        # an existing default is never changed here.
        default = None if _has_default() else write_file(credentials.server_url, credentials.token)
        paths = paths.ensure()
        agnes = _agnes_command()
        changed = {
            ".mcp.json": claude_files.write_mcp_json(paths.root, agnes),
            ".claude/settings.json": claude_files.write_settings(paths.root, shlex.quote(agnes)),
            "CLAUDE.md": claude_files.write_claude_md(paths.root, rails),
            ".gitignore": claude_files.ignore_data(paths.root),
        }
        summary: dict[str, Any] = {
            "workspace": str(paths.root),
            "user": me["email"],
            "server_url": credentials.server_url,
            "credentials": str(stored),
            "default_credentials": str(default) if default else None,
            "written": [name for name, wrote in changed.items() if wrote],
            "pull": None,
        }
        if not args.no_pull:
            from agnes_sync.pull.progress import reporter_for
            from agnes_sync.pull.pull import pull as run_pull

            result = run_pull(paths, api, reporter=reporter_for(args.quiet, args.json))
            summary["pull"] = result.as_dict()
    pulled = summary["pull"]
    was = ""
    if before.get("user") and before.get("user") != me["email"]:
        was = f" (it acted as {before['user']} before)"
    message = (
        f"Workspace {paths.root} is wired to {credentials.server_url} as {me['email']}{was}.\n"
        "  Claude Code: .mcp.json (server 'agnes'), .claude/settings.json (pull at session "
        "start, push at session end), CLAUDE.md (agent rails)\n"
        f"  Credentials: this workspace's own, in {stored} (mode 0600)"
    )
    if default:
        message += f"\n  Also your default outside workspaces (you had none): {default}"
    if pulled:
        message += (
            f"\n  Pulled {pulled['downloaded']:,} files ({size(pulled['bytes'])}) for "
            f"{pulled['tables']:,} tables."
        )
    emit(summary, as_json=args.json, message=None if args.quiet else message)
    return exit_codes.FAILURE if pulled and pulled["failed"] else exit_codes.OK
