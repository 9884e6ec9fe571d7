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

from cli import exit_codes
from cli.credentials import credentials_path, resolve, write_file
from cli.output import emit, print_json, print_message

if TYPE_CHECKING:
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths


def _paths(args: argparse.Namespace) -> WorkspacePaths:
    from agnes_sync.workspace.layout import WorkspacePaths, find_workspace

    explicit = getattr(args, "workspace", None)
    return WorkspacePaths(Path(explicit).resolve()) if explicit else find_workspace(Path.cwd())


def _api(args: argparse.Namespace) -> ServerApi:
    from agnes_sync.server_api import ServerApi

    credentials = resolve(args.server_url, args.token)
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
        f"{summary['tables']} tables: {verb} {summary['downloaded']} files "
        f"({summary['bytes'] / 1024**2:.1f} MB), {summary['unchanged']} unchanged, "
        f"{summary['removed']} removed, in {summary['seconds']} s."
    )
    for failure in failed:
        sys.stderr.write(f"failed: {failure['file']}: {failure['message']}\n")


def pull(args: argparse.Namespace) -> int:
    from agnes_sync.pull.progress import reporter_for
    from agnes_sync.pull.pull import pull as run_pull

    with closing(_api(args)) as api:
        summary = run_pull(
            _paths(args),
            api,
            jobs=args.jobs,
            dry_run=args.dry_run,
            reporter=reporter_for(args.quiet, args.json),
        )
    _pull_summary(summary.as_dict(), args.json, args.quiet)
    return exit_codes.FAILURE if summary.failed else exit_codes.OK


def push(args: argparse.Namespace) -> int:
    from agnes_sync.push import push as run_push

    with closing(_api(args)) as api:
        summary = run_push(_paths(args), api)
    data = summary.as_dict()
    if args.json:
        print_json(data)
    elif not args.quiet or summary.failed:
        print_message(
            f"uploaded {summary.uploaded} files ({summary.bytes / 1024:.1f} KB), "
            f"{summary.unchanged} unchanged, in {data['seconds']} s."
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


def init(args: argparse.Namespace) -> int:
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace import claude_files

    credentials = resolve(args.server_url, args.token)
    if not credentials.token:
        raise argparse.ArgumentTypeError("agnes init needs --token (or AGNES_TOKEN)")
    with closing(
        ServerApi(credentials.server_url, credentials.token, agent="agnes-cli", timeout=300)
    ) as api:
        me = api.get("/api/whoami")  # the token works before anything is written
        rails = api.get("/api/workspace/instructions")["claude_md"]
        stored = write_file(credentials.server_url, credentials.token)
        paths = _paths(args).ensure()
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
            "written": [name for name, wrote in changed.items() if wrote],
            "pull": None,
        }
        if not args.no_pull:
            from agnes_sync.pull.progress import reporter_for
            from agnes_sync.pull.pull import pull as run_pull

            result = run_pull(paths, api, reporter=reporter_for(args.quiet, args.json))
            summary["pull"] = result.as_dict()
    pulled = summary["pull"]
    message = (
        f"Workspace {paths.root} is wired to {credentials.server_url} as {me['email']}.\n"
        "  Claude Code: .mcp.json (server 'agnes'), .claude/settings.json (pull at session "
        "start, push at session end), CLAUDE.md (agent rails)\n"
        f"  Credentials: {credentials_path()} (mode 0600)"
    )
    if pulled:
        message += f"\n  Pulled {pulled['downloaded']} files for {pulled['tables']} tables."
    emit(summary, as_json=args.json, message=None if args.quiet else message)
    return exit_codes.FAILURE if pulled and pulled["failed"] else exit_codes.OK
