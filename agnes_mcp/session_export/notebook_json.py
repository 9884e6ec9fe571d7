"""The notebook itself: nbformat 4.5 JSON written with the standard library (the server
needs no notebook package to export), checked by ``nbformat`` in the tests.

First a markdown cell (who, when, which server and log, how to run it), then the set-up
cell (``ws = connect()``), then per step a markdown cell (tool, time, tables read,
provenance; a refusal's code, message and hint) and, for a step that ran, a code cell
repeating it with the notebook API. A refused step's call is shown commented out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Any

from agnes_mcp.session_export import code_text
from agnes_mcp.session_export.steps import ExportSummary, Step

NBFORMAT = 4
NBFORMAT_MINOR = 5
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
KEPT_RESULT = "result_"
SETUP = "from agnes_mcp.notebook import connect\n\nws = connect()\nws\n"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


@dataclass(frozen=True)
class Origin:
    """Where the steps came from, for the first cell."""

    user: str | None
    server: str | None
    source: str  # e.g. "the server's audit log"
    exported_at: dt.datetime


def plain(text: str) -> str:
    """Free text (a refusal's message, a hint) shown as itself in markdown."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escaped).replace("\n", " ")


def code_span(text: str) -> str:
    """Inline code (no escapes work inside it: the backticks outrun the text's own)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text.replace(chr(10), ' ')}{pad}{ticks}"


def fenced(text: str, language: str = "sql") -> str:
    """A fenced code block longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}\n"


def when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell_source(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def markdown(cell_id: str, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _cell_source(text)}


def code(cell_id: str, source: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": cell_id,
        "metadata": metadata or {},
        "execution_count": None,
        "outputs": [],
        "source": _cell_source(source),
    }


def header_text(steps: list[Step], summary: ExportSummary, origin: Origin) -> str:
    title = (
        f"# Agnes session {code_span(summary.session)}" if summary.session else "# Agnes session"
    )
    lines = [title, ""]
    if origin.user:
        lines.append(f"- **Who:** {plain(origin.user)}")
    if steps:
        lines.append(f"- **When:** {when(steps[0].at)} to {when(steps[-1].at)}")
    if origin.server:
        lines.append(f"- **Server:** {plain(origin.server)}")
    window = []
    if summary.session:
        window.append(f"session {code_span(summary.session)}")
    if summary.since:
        window.append(f"since {when(summary.since)}")
    if summary.until:
        window.append(f"until {when(summary.until)}")
    lines.append(f"- **From:** {origin.source}" + (f" · {', '.join(window)}" if window else ""))
    lines.append(f"- **Exported:** {when(origin.exported_at)}")
    lines.append(f"- **Steps:** {plain(summary.sentence())}")
    lines += [f"- **Note:** {plain(n)}" for n in summary.notes]
    lines += [
        "",
        "## Running it",
        "",
        "It repeats the session's steps with the Agnes notebook API, through the same rails "
        "and under the grants of whoever runs it: the results are the data as it is when it "
        "runs.",
        "",
        "1. Install the notebook extra: `pip install 'agnes[notebook]'` "
        "(or `uv add 'agnes[notebook]'`).",
        "2. Credentials: open it inside an Agnes workspace (it uses the workspace's), or set "
        "`AGNES_SERVER_URL` and `AGNES_TOKEN` (a personal access token, from `/me`) before "
        "starting Jupyter.",
        "3. Run all cells. Refused steps are shown, not run; snapshots are taken afresh.",
    ]
    return "\n".join(lines) + "\n"


def provenance(step: Step) -> str | None:
    parts = []
    if step.engine:
        parts.append(plain(step.engine))
    if step.bytes_scanned is not None:
        verb = "bytes estimated" if step.tool == "snapshot_estimate" else "bytes scanned"
        parts.append(f"{step.bytes_scanned:,} {verb}")
    if step.rows is not None:
        parts.append(f"{step.rows:,} row{'s' if step.rows != 1 else ''}")
    if step.truncated is not None:
        parts.append("cut by a limit" if step.truncated else "whole")
    return " · ".join(parts) or None


def step_text(n: int, step: Step, shown_call: str | None) -> str:
    lines = [f"### Step {n} · {code_span(step.tool)} · {when(step.at)}", ""]
    tables = ", ".join(code_span(t) for t in step.tables)
    if tables or step.ok:
        lines.append(f"- **Tables read:** {tables or 'none recorded'}")
    said = provenance(step) if step.ok else None
    if said:
        lines.append(f"- **Provenance:** {said}")
    if step.truncated:
        lines.append(
            "- **Cut:** the session got part of the answer (a row or byte limit); the code "
            "below runs with the same limit."
        )
    if not step.ok:
        message = f" · {plain(step.message)}" if step.message else ""
        lines.append(f"- **Refused:** {code_span(step.result)}{message}")
        if step.hint:
            lines.append(f"- **Hint:** {plain(step.hint)}")
    if step.note:
        lines.append(f"- **Note:** {plain(step.note)}")
    if any(t.startswith(KEPT_RESULT) for t in step.tables):
        lines.append(
            "- **Note:** it reads a kept result (a large answer of an earlier call, kept under "
            "a result_ name only for a while): if it is gone, run that earlier query with a "
            "larger limit instead."
        )
    if step.sql_cut:
        lines.append(
            "- **Not run here:** the log kept only the start of this SQL, so running it "
            "would run something else. The kept part is below."
        )
    show_sql = step.sql and (shown_call is None or step.tool not in ("query", "query_remote"))
    if show_sql and step.sql:
        label = "The SQL it ran" if step.ok else "The SQL"
        lines += ["", f"{label}:", "", fenced(step.sql)]
    return "\n".join(lines).rstrip("\n") + "\n"


def build(steps: list[Step], summary: ExportSummary, origin: Origin) -> dict[str, Any]:
    """The notebook (a JSON-ready dict) for ``steps``."""
    cells = [
        markdown("agnes-session", header_text(steps, summary, origin)),
        code("agnes-setup", SETUP),
    ]
    for n, step in enumerate(steps, start=1):
        target = f"step_{n}"
        source = code_text.step_call(step, target)
        cells.append(markdown(f"step-{n}", step_text(n, step, source)))
        if source is None:
            continue
        if step.runs:
            setup = code_text.snapshot_setup(step) if step.tool == "snapshot_create" else ""
            cells.append(
                code(f"step-{n}-code", f"{setup}{source}\n{target}\n", {"agnes": {"step": n}})
            )
        elif not step.ok:
            note = f"# Refused in the session ({step.result}); not run here:\n"
            cells.append(code(f"step-{n}-refused", note + code_text.commented(source)))
    return {
        "nbformat": NBFORMAT,
        "nbformat_minor": NBFORMAT_MINOR,
        "metadata": {
            "kernelspec": KERNELSPEC,
            "language_info": {"name": "python"},
            "agnes": _metadata(steps, summary, origin),
        },
        "cells": cells,
    }


def _metadata(steps: list[Step], summary: ExportSummary, origin: Origin) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.astimezone(dt.UTC).isoformat() if value else None

    return {
        "exported_at": iso(origin.exported_at),
        "server": origin.server,
        "user": origin.user,
        "source": origin.source,
        "session": summary.session,
        "since": iso(summary.since),
        "until": iso(summary.until),
        "found": summary.found,
        "steps": [
            {
                "step": n,
                "tool": s.tool,
                "at": iso(s.at),
                "result": s.result,
                "rows": s.rows,
                "runs": s.runs,
                "session": s.session,
            }
            for n, s in enumerate(steps, start=1)
        ],
    }


def checked(steps: list[Step]) -> list[Step]:
    """``steps``, those that ran but whose log lacks what repeating them needs marked so."""
    out = []
    for step in steps:
        if step.runs and code_text.step_call(step, "_") is None:
            step = replace(
                step,
                replayable=False,
                note=step.note or "The log lacks what repeating this call needs.",
            )
        out.append(step)
    return out


def export(
    steps: list[Step],
    origin: Origin,
    *,
    session: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    found: int,
    notes: list[str] | None = None,
) -> tuple[dict[str, Any], ExportSummary]:
    """The notebook for ``steps`` (already cut to :data:`MAX_STEPS`) and what it holds."""
    steps = checked(steps)
    summary = ExportSummary.of(
        steps, session=session, since=since, until=until, found=found, notes=notes
    )
    return build(steps, summary, origin), summary
