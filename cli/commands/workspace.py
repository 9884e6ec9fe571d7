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
    Credentials,
    CredentialsError,
    read_file,
    read_workspace_entry,
    resolve,
    write_file,
    write_workspace_entry,
)
from agnes_sync.errors import AgnesError
from cli import exit_codes
from cli.output import counted, emit, print_json, print_message, size
from cli.workspace_session import workspace_paths

if TYPE_CHECKING:
    from agnes_sync.pull.pull import PullSummary
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths

AGENT = "agnes-cli"
TIMEOUT = 300.0


def _init_paths(args: argparse.Namespace) -> WorkspacePaths:
    """Where ``agnes init`` wires a workspace (the one command that makes one):
    ``--workspace``, else the workspace holding the current folder, else the current
    folder."""
    from agnes_sync.workspace.layout import WorkspacePaths, enclosing_workspace

    explicit = getattr(args, "workspace", None)
    if explicit:
        return WorkspacePaths(Path(explicit).expanduser().resolve())
    return enclosing_workspace(Path.cwd()) or WorkspacePaths(Path.cwd().resolve())


class WorkspaceUnusable(AgnesError):
    """``agnes init`` cannot make ``.agnes/`` where it was asked to."""

    code = "workspace_unusable"
    status = 400
    default_hint = (
        "agnes init makes .agnes/ in the folder it wires: run it in a folder you may write, "
        "or name one with --workspace W (a missing one is made)."
    )


def _made(paths: WorkspacePaths) -> WorkspacePaths:
    """``paths`` made a workspace, or the refusal saying why it cannot be one (a file of
    that name, a folder this account may not write), before anything is written."""
    if paths.root.exists() and not paths.root.is_dir():
        raise WorkspaceUnusable(f"{paths.root} is a file, not a folder.")
    try:
        return paths.ensure()
    except OSError as exc:
        raise WorkspaceUnusable(
            f"Cannot make {exc.filename or paths.dot}: {exc.strerror or exc}."
        ) from None


def _server_api(credentials: Credentials) -> ServerApi:
    from agnes_sync.server_api import ServerApi

    return ServerApi(credentials.server_url, credentials.token, agent=AGENT, timeout=TIMEOUT)


def _api(args: argparse.Namespace, paths: WorkspacePaths) -> ServerApi:
    return _server_api(resolve(args.server_url, args.token, workspace=paths.root))


def _run_pull(
    paths: WorkspacePaths, api: ServerApi, credentials: Credentials, **options: Any
) -> PullSummary:
    """A pull whose files come over the standard library's http.client, reading into a
    reused buffer (:mod:`agnes_sync.pull.transport`); over ``api``'s httpx when the
    environment names a proxy."""
    from agnes_sync.pull.pull import pull as run_pull
    from agnes_sync.pull.transport import wire_for

    wire = wire_for(credentials.server_url, credentials.token, agent=AGENT, timeout=TIMEOUT)
    try:
        return run_pull(paths, api, transport=wire, **options)
    finally:
        if wire is not None:
            wire.close()


def _pull_summary(summary: dict[str, Any], as_json: bool, quiet: bool) -> None:
    if as_json:
        print_json(summary)
        return
    failed = summary["failed"]
    if quiet and not failed:
        return
    verb = "would download" if summary["dry_run"] else "downloaded"
    print_message(
        f"{counted(summary['tables'], 'table')}: {verb} {counted(summary['downloaded'], 'file')} "
        f"({size(summary['bytes'])}), {summary['unchanged']:,} unchanged, "
        f"{summary['removed']:,} removed, in {summary['seconds']} s."
    )
    if summary.get("forgotten"):
        gone = counted(
            summary["forgotten"], "snapshot or kept result", "snapshots and kept results"
        )
        print_message(f"{gone} removed: made from tables you may no longer read.")
    if not failed:
        return
    from agnes_sync.pull.pull import failed_hint, failure_line
    from cli.tool_words import cli_words  # the server's words: loaded only for a failure

    for failure in failed:
        sys.stderr.write(f"failed: {failure_line(failure)}\n")
    sys.stderr.write(f"hint: {cli_words(failed_hint(failed))}\n")


def pull(args: argparse.Namespace) -> int:
    from agnes_sync.pull.progress import reporter_for

    paths = workspace_paths(args)  # never made here: a typo is refused, not filled
    credentials = resolve(args.server_url, args.token, workspace=paths.root)
    with closing(_server_api(credentials)) as api:
        summary = _run_pull(
            paths,
            api,
            credentials,
            jobs=args.jobs,
            dry_run=args.dry_run,
            reporter=reporter_for(args.quiet, args.json),
        )
    _pull_summary(summary.as_dict(), args.json, args.quiet)
    return exit_codes.FAILURE if summary.failed else exit_codes.OK


def push(args: argparse.Namespace) -> int:
    from agnes_sync.push import push as run_push

    paths = workspace_paths(args)
    with closing(_api(args, paths)) as api:
        summary = run_push(paths, api)
    data = summary.as_dict()
    if args.json:
        print_json(data)
    elif not args.quiet or summary.failed:
        print_message(
            f"uploaded {counted(summary.uploaded, 'file')} ({size(summary.bytes)}), "
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


def _git_credential(git_url: str, token: str) -> dict[str, Any]:
    """Let the user's git (Claude Code clones with it) sign in to the feed: the token in
    git's credential store, a helper for the server's URL in the global git config."""
    from agnes_sync.errors import AgnesError
    from agnes_sync.git_credentials import GitNotFound, register

    scope = git_url.removesuffix("/marketplace.git")
    outcome: dict[str, Any] = {"scope": scope, "skipped": None, "error": None}
    try:
        outcome.update(register(scope, token).as_dict())
    except GitNotFound as exc:
        outcome["skipped"] = exc.message
    except AgnesError as exc:
        outcome["error"] = exc.message
    return outcome


def _plugins_text(feed: dict[str, Any] | None, git: dict[str, Any] | None) -> str:
    if feed is None or git is None:
        return "\n  Plugins: this server has no plugin marketplace (an older Agnes); skipped"
    text = (
        f"\n  Plugins: marketplace '{feed['marketplace']}' ({len(feed['plugins'])} granted to "
        f"you), in .claude/settings.json extraKnownMarketplaces as {feed['git_url']} (no token);"
        "\n    Claude Code offers it when you trust this folder ('agnes marketplace info' lists it)"
    )
    if git["skipped"] or git["error"]:
        return text + f"\n  Git: not set up: {git['skipped'] or git['error']}"
    if git["config_changed"]:
        text += (
            f"\n  Git config {git['config'] or '(global)'}: {git['config_key']} reset, then "
            f"set to '{git['helper']}' (for {git['scope']} only)"
        )
    else:
        text += f"\n  Git config: {git['config_key']} already set; unchanged"
    return text + f"\n  Git credential: your token for {git['scope']} in {git['store']} (0600)"


def init(args: argparse.Namespace) -> int:
    from agnes_sync.workspace import claude_files
    from cli.commands.marketplace import fetch_info

    paths = _init_paths(args)
    credentials = resolve(args.server_url, args.token, workspace=paths.root)
    if not credentials.token:
        raise argparse.ArgumentTypeError("agnes init needs --token (or AGNES_TOKEN)")
    with closing(_server_api(credentials)) as api:
        me = api.whoami()  # the token works before anything is written
        rails = api.get("/api/workspace/instructions")["claude_md"]
        feed = fetch_info(api)
        known = (
            claude_files.KnownMarketplace(feed["marketplace"], feed["git_url"]) if feed else None
        )
        made_here = not paths.dot.exists()
        paths = _made(paths)  # before the credentials: a folder that cannot be one gets none
        try:
            before = read_workspace_entry(paths.root)
            stored = write_workspace_entry(
                paths.root, credentials.server_url, credentials.token, me["email"]
            )
        except CredentialsError:
            if made_here:  # no workspace without its credentials: the empty .agnes/ goes
                shutil.rmtree(paths.dot, ignore_errors=True)
            raise
        # A first init also gives the user a default (for commands outside workspaces);
        # an existing default is never changed here.
        default = None if _has_default() else write_file(credentials.server_url, credentials.token)
        agnes = _agnes_command()
        changed = {
            ".mcp.json": claude_files.write_mcp_json(paths.root, agnes),
            ".claude/settings.json": claude_files.write_settings(
                paths.root, shlex.quote(agnes), known
            ),
            "CLAUDE.md": claude_files.write_claude_md(paths.root, rails),
            ".gitignore": claude_files.ignore_data(paths.root),
        }
        git = _git_credential(feed["git_url"], credentials.token) if feed else None
        summary: dict[str, Any] = {
            "workspace": str(paths.root),
            "user": me["email"],
            "server_url": credentials.server_url,
            "credentials": str(stored),
            "default_credentials": str(default) if default else None,
            "written": [name for name, wrote in changed.items() if wrote],
            "marketplace": {k: feed[k] for k in ("marketplace", "git_url", "plugins")}
            if feed
            else None,
            "git_credential": git,
            "pull": None,
        }
        was = ""
        if before.get("user") and before.get("user") != me["email"]:
            was = f" (it acted as {before['user']} before)"
        message = (
            f"Workspace {paths.root} is wired to {credentials.server_url} as {me['email']}{was}.\n"
            "  Claude Code: .mcp.json (server 'agnes'), .claude/settings.json (pull and plugin "
            "refresh at session start, push at session end), CLAUDE.md (agent rails)\n"
            f"  Credentials: this workspace's own, in {stored} (mode 0600)"
            + _plugins_text(feed, git)
        )
        if default:
            message += f"\n  Also your default outside workspaces (you had none): {default}"
        if not args.no_pull:
            from agnes_sync.pull.progress import reporter_for

            reporter = reporter_for(args.quiet, args.json)
            try:
                result = _run_pull(paths, api, credentials, reporter=reporter)
            except (AgnesError, KeyboardInterrupt):
                # The wiring is done: say so before the pull's own error (Ctrl-C in a long
                # first pull, a dropped server, a full disk), and what finishes the job.
                if not (args.quiet or args.json):
                    print_message(
                        message + "\n  Pull: not finished (see below); the workspace is "
                        "wired: run 'agnes pull' there to fetch the tables (it resumes)."
                    )
                raise
            summary["pull"] = result.as_dict()
    pulled = summary["pull"]
    if pulled:
        message += (
            f"\n  Pulled {counted(pulled['downloaded'], 'file')} ({size(pulled['bytes'])}) for "
            f"{counted(pulled['tables'], 'table')}."
        )
    emit(summary, as_json=args.json, message=None if args.quiet else message)
    if git and git["error"] and (args.quiet or args.json):
        sys.stderr.write(f"error: git credential not set up: {git['error']}\n")
    failed = (pulled and pulled["failed"]) or (git and git["error"])
    return exit_codes.FAILURE if failed else exit_codes.OK
