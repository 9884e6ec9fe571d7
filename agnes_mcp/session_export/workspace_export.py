"""A workspace's steps as a notebook, from its own log
(:mod:`agnes_mcp.session_export.workspace_log`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from agnes_mcp.session_export.notebook_json import Origin, export
from agnes_mcp.session_export.refusals import NothingToExport
from agnes_mcp.session_export.steps import MAX_STEPS, TOOLS, ExportSummary, Step
from agnes_mcp.session_export.window import as_utc
from agnes_mcp.session_export.workspace_log import QueryLog

SOURCE = "this workspace's log (.agnes/log/queries.jsonl)"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def step_of(entry: dict[str, Any]) -> Step | None:
    """The step one log line records, or None for a line that is not one."""
    tool, at = entry.get("tool"), entry.get("at")
    if tool not in TOOLS or not isinstance(at, str):
        return None
    try:
        when = as_utc(dt.datetime.fromisoformat(at))
    except ValueError:
        return None
    arguments = entry.get("arguments")
    tables = entry.get("tables")
    return Step(
        at=when,
        tool=str(tool),
        result=str(entry.get("result") or "error"),
        arguments=arguments if isinstance(arguments, dict) else {},
        sql=_text(entry.get("sql")),
        tables=tuple(str(t) for t in tables) if isinstance(tables, list) else (),
        engine=_text(entry.get("engine")),
        bytes_scanned=_int(entry.get("bytes_scanned")),
        rows=_int(entry.get("row_count")),
        truncated=entry.get("truncated") if isinstance(entry.get("truncated"), bool) else None,
        message=_text(entry.get("message")),
        hint=_text(entry.get("hint")),
        session=_text(entry.get("session")),
    )


def read_steps(
    log: QueryLog,
    *,
    session: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None = None,
) -> tuple[list[Step], int]:
    """The first :data:`MAX_STEPS` steps in the window, and how many it holds in all."""
    kept: list[Step] = []
    found = 0
    for entry in log.entries():
        step = step_of(entry)
        if step is None or (session is not None and step.session != session):
            continue
        if (since is not None and step.at < since) or (until is not None and step.at >= until):
            continue
        found += 1
        if len(kept) < MAX_STEPS:
            kept.append(step)
    return kept, found


def latest_session(log: QueryLog) -> str | None:
    """The session of the newest step in the log."""
    latest = None
    for entry in log.entries():
        if entry.get("tool") in TOOLS and isinstance(entry.get("session"), str):
            latest = entry["session"]
    return latest


def notebook_for(
    log: QueryLog,
    *,
    session: str | None,
    since: dt.datetime | None,
    server: str | None,
    user: str | None,
) -> tuple[dict[str, Any], ExportSummary]:
    """The notebook of ``session`` (and/or the steps since ``since``); with neither, the
    log's own (current) session."""
    if session is None and since is None:
        session = log.session
    steps, found = read_steps(log, session=session, since=since)
    if not steps:
        what = f"session {session}" if session else "that window"
        raise NothingToExport(
            f"This workspace's log holds no steps for {what}.", details={"session": session}
        )
    origin = Origin(user=user, server=server, source=SOURCE, exported_at=dt.datetime.now(dt.UTC))
    return export(steps, origin, session=session, since=since, until=None, found=found)


def write_notebook(notebook: dict[str, Any], path: Path) -> Path:
    """Write ``notebook`` to ``path`` atomically (a temporary file, then a rename); a
    refused write is an ``OSError`` naming ``path``, not the temporary file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", "utf-8")
        temporary.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return path


def notebook_name(now: dt.datetime | None = None) -> str:
    """``agnes-session-<UTC time>.ipynb``."""
    return f"agnes-session-{now or dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.ipynb"


def default_path(root: Path) -> Path:
    """``<workspace>/notebooks/agnes-session-<UTC time>.ipynb``."""
    return root / "notebooks" / notebook_name()
