"""The last pull's failure, kept in ``.agnes/pull-failed.json`` until a pull succeeds.

A pull that fails (the server unreachable, the token refused, a file that would not
download) leaves the previous copy of what it did not fetch, and ``agnes query`` and the
workspace's MCP tools go on answering from it. Each answer reading such a table says so
(:meth:`PullFailure.note`): since when the data is, that the last pull failed and why, and
how to retry. A pull that fetches everything clears it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from agnes_sync import atomic

FILE = "pull-failed.json"  # WorkspacePaths.pull_failure


@dataclass(frozen=True)
class PullFailure:
    at: str  # ISO 8601, UTC: when the pull failed
    why: str  # its error's message
    data_from: str  # ISO 8601: when the last pull that completed ran ("" if unknown)
    tables: tuple[str, ...] | None  # the tables it left stale; None: every table

    def note(self, table: str) -> str | None:
        """What an answer reading ``table`` says of it (None when the failure left it be)."""
        if self.tables is not None and table not in self.tables:
            return None
        since = f"the pull of {_minute(self.data_from)}" if self.data_from else "an earlier pull"
        return (
            f"{table} is from {since}: the last pull, at {_minute(self.at)}, failed "
            f"({self.why.rstrip('.')}); run 'agnes pull' to retry"
        )


def _minute(iso: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def path_in(dot: Path) -> Path:
    return dot / FILE


def record(dot: Path, why: str, data_from: str, tables: list[str] | None) -> None:
    """Keep a failed pull's record in the workspace's ``dot`` folder. Never raises: a
    workspace the disk refuses already fails the pull with its own error."""
    body = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "why": why,
        "data_from": data_from,
        "tables": sorted(tables) if tables is not None else None,
    }
    try:
        atomic.write_text(path_in(dot), json.dumps(body))
    except OSError:
        return


def clear(dot: Path) -> None:
    atomic.discard(path_in(dot))


def read(dot: Path) -> PullFailure | None:
    """The last pull's failure, None when it succeeded (or nothing can be read)."""
    try:
        data = json.loads(path_in(dot).read_text(encoding="utf-8"))
        tables = data.get("tables")
        return PullFailure(
            at=str(data["at"]),
            why=str(data["why"]),
            data_from=str(data.get("data_from") or ""),
            tables=tuple(str(t) for t in tables) if isinstance(tables, list) else None,
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
