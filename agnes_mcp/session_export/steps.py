"""One step of a session (a tool call that read data, or was refused), the same shape
whichever log it came from, and what an export holds.

``arguments`` are canonical, whichever log they came from:

- ``query``, ``query_remote``: ``sql``, ``limit``
- ``describe``: ``table``, ``n``
- ``snapshot_estimate``: ``table``, ``select``, ``where``, ``limit``, ``order_by``
- ``snapshot_create``: those and ``name``, ``ttl_seconds``
- ``metric_query``: ``metric_id``, ``dimensions``, ``grain``, ``time_range``
  (``{"start", "end"}``), ``filters``, ``limit``
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

MAX_STEPS = 500  # steps one notebook holds; an export of more says so and how to narrow it
TOOLS = (
    "query",
    "query_remote",
    "describe",
    "snapshot_estimate",
    "snapshot_create",
    "snapshot_drop",
    "metric_query",
)


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    tool: str
    result: str  # "ok", or the refusal's code
    arguments: dict[str, Any] = field(default_factory=dict)
    sql: str | None = None  # the SQL that ran (compiled, for metrics and snapshots)
    sql_cut: bool = False  # the log kept only the start of the SQL
    tables: tuple[str, ...] = ()
    engine: str | None = None
    bytes_scanned: int | None = None
    rows: int | None = None
    truncated: bool | None = None
    message: str | None = None  # a refusal's message
    hint: str | None = None
    session: str | None = None
    replayable: bool = True  # False: the log lacks what repeating the call needs (see note)
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    @property
    def runs(self) -> bool:
        """Whether the notebook repeats it (a code cell that runs)."""
        return self.ok and self.replayable and not self.sql_cut


@dataclass(frozen=True)
class ExportSummary:
    """What an export holds, for the tool, the route and the CLI to report."""

    session: str | None
    since: dt.datetime | None
    until: dt.datetime | None
    steps: int
    ran: int
    refused: int
    not_replayable: int
    found: int  # steps the log holds for the window (more than ``steps`` when cut)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        steps: list[Step],
        *,
        session: str | None,
        since: dt.datetime | None,
        until: dt.datetime | None,
        found: int,
        notes: list[str] | None = None,
    ) -> ExportSummary:
        return cls(
            session=session,
            since=since,
            until=until,
            steps=len(steps),
            ran=sum(1 for s in steps if s.runs),
            refused=sum(1 for s in steps if not s.ok),
            not_replayable=sum(1 for s in steps if s.ok and not s.runs),
            found=found,
            notes=list(notes or []),
        )

    def sentence(self) -> str:
        """``12 steps: 9 run as code, 2 refused, 1 not replayable``, and any cut."""
        text = f"{self.steps} step{'s' if self.steps != 1 else ''}: {self.ran} run as code"
        text += f", {self.refused} refused" if self.refused else ""
        text += f", {self.not_replayable} not replayable" if self.not_replayable else ""
        if self.found > self.steps:
            text += f" (the first {self.steps} of {self.found}: {cut_advice()})"
        return text


def cut_advice() -> str:
    return (
        f"a notebook holds at most {MAX_STEPS} steps; export a narrower window "
        "(a later since, or one session)"
    )
