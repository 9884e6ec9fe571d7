"""``agnes notebook export``: the queries a user (or their agent) ran, as a runnable
notebook: from this workspace's own log, or from the server's audit log.

The parser is argparse only (``add_notebook_commands``); the work is imported when the
command runs, so ``agnes --help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli import exit_codes
from cli.analyst_parsers import given

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

Leaf = Callable[..., argparse.ArgumentParser]
FROM_CHOICES = ("auto", "workspace", "server")


def add_notebook_commands(
    commands: Subparsers, leaf: Leaf, client: Sequence[argparse.ArgumentParser]
) -> None:
    notebook = commands.add_parser("notebook", help="notebooks of your sessions")
    actions = notebook.add_subparsers(title="notebook commands", metavar="ACTION", required=True)
    export = leaf(
        actions,
        "export",
        "cli.commands.notebook_export:export",
        "turn a session's queries into a runnable notebook (.ipynb)",
        client,
    )
    export.add_argument(
        "--since",
        metavar="WHEN",
        type=given("a time", optional=True),
        help="steps since: 30m, 2h, 1d, 1w back, or an ISO time",
    )
    export.add_argument(
        "--session",
        metavar="ID",
        type=given("a session id", optional=True),
        help="one session (default: the latest, if --since is absent)",
    )
    export.add_argument(
        "--from",
        dest="source",
        choices=FROM_CHOICES,
        default="auto",
        help="workspace: this workspace's own log; server: the server's audit log (default: "
        "the workspace's inside one, else the server's)",
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write it (default: notebooks/agnes-session-<time>.ipynb in a "
        "workspace, else ./agnes-session-<time>.ipynb)",
    )
    export.add_argument(
        "--workspace",
        type=given("a folder", optional=True),
        help="workspace folder (default: the nearest one holding .agnes/)",
    )


def _workspace_root(args: argparse.Namespace) -> Path | None:
    """``--workspace`` (which must be one), else the enclosing workspace, else None."""
    from agnes_sync.workspace.layout import enclosing_workspace
    from cli.workspace_session import workspace_paths

    if args.workspace or args.source == "workspace":
        return workspace_paths(args).root
    found = enclosing_workspace(Path.cwd())
    return found.root if found else None


def export(args: argparse.Namespace) -> int:
    from agnes_mcp.session_export.window import parse_since

    root = _workspace_root(args)
    source = args.source if args.source != "auto" else ("workspace" if root else "server")
    since = parse_since(args.since) if args.since else None
    output = Path(args.output).expanduser() if args.output else None
    if source == "workspace" and root is not None:
        report = _from_workspace(args, root, since, output)
    else:
        report = _from_server(args, root, output)
    _say(report, as_json=args.json)
    return exit_codes.OK


def _from_workspace(
    args: argparse.Namespace, root: Path, since: dt.datetime | None, output: Path | None
) -> dict[str, Any]:
    from agnes_mcp.session_export.workspace_export import latest_session
    from cli.workspace_session import open_backend

    args.workspace = str(root)
    with open_backend(args) as backend:
        assert backend.query_log is not None
        session = args.session
        if session is None and since is None:
            session = latest_session(backend.query_log)
        if session is None and since is None:
            from agnes_mcp.session_export.refusals import NothingToExport

            raise NothingToExport("This workspace's log holds no steps yet.")
        out = backend.session_export(session, since, path=output)
    return {**out.model_dump(mode="json"), "source": "workspace"}


def _from_server(
    args: argparse.Namespace, root: Path | None, output: Path | None
) -> dict[str, Any]:
    from agnes_mcp.session_export.workspace_export import (
        default_path,
        notebook_name,
        write_notebook,
    )
    from agnes_sync.credentials import resolve
    from agnes_sync.server_api import ServerApi

    credentials = resolve(args.server_url, args.token, workspace=root)
    api = ServerApi(credentials.server_url, credentials.token, agent="agnes-cli", timeout=300)
    try:
        notebook = api.get("/api/session/export", since=args.since, session=args.session)
    finally:
        api.close()
    path = output or (default_path(root) if root else Path.cwd() / notebook_name())
    written = write_notebook(notebook, path)
    meta = notebook.get("metadata", {}).get("agnes", {})
    steps = meta.get("steps", [])
    return {
        "session": meta.get("session"),
        "since": meta.get("since"),
        "steps": len(steps),
        "ran": sum(1 for s in steps if s.get("runs")),
        "refused": sum(1 for s in steps if s.get("result") != "ok"),
        "not_replayable": sum(1 for s in steps if s.get("result") == "ok" and not s.get("runs")),
        "found": meta.get("found", len(steps)),
        "path": str(written),
        "download_url": None,
        "notes": [],
        "source": "server",
    }


def _say(report: dict[str, Any], *, as_json: bool) -> None:
    from cli.output import counted, emit

    what = f"session {report['session']}" if report.get("session") else "the window"
    text = (
        f"Wrote {report['path']}: {what}, {counted(report['steps'], 'step')} "
        f"({report['ran']:,} run as code, {report['refused']:,} refused"
    )
    text += f", {report['not_replayable']} not replayable)" if report["not_replayable"] else ")"
    text += f", from the {report['source']}'s log."
    if report["found"] > report["steps"]:
        text += (
            f"\ncut: the first {report['steps']:,} of {counted(report['found'], 'step')} (a "
            "notebook holds at most that many); narrow it with a later --since or one --session."
        )
    text += "".join(f"\nnote: {n}" for n in report.get("notes") or [])
    text += "\nRun it with the notebook extra: pip install 'agnes[notebook]'."
    emit(report, as_json=as_json, message=text)
