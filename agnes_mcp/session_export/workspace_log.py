"""A workspace's own log of the data calls made through it: one JSON line per call of
``query``, ``query_remote``, ``describe``, ``snapshot_estimate``, ``snapshot_create`` and
``metric_query`` (by the stdio MCP server, the CLI or a notebook), in
``.agnes/log/queries.jsonl``.

A line holds the tool, the time, the session (one per backend: an ``agnes mcp`` process,
a CLI command, a notebook kernel), the canonical arguments
(:mod:`agnes_mcp.session_export.steps`), the SQL, tables, engine, bytes, rows, whether a
limit cut it, and for a refusal its code, message and hint. Writing one is an append of a
few hundred bytes after the answer is in hand; a log that cannot be written never fails
the call. Past :data:`ROTATE_BYTES` the file moves to ``queries.1.jsonl`` (the one before
is dropped).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from pydantic import BaseModel

from agnes_mcp.rails.results import Answer
from agnes_sync.errors import AgnesError

logger = logging.getLogger("agnes.workspace_log")

LOG_DIR = "log"
LOG_NAME = "queries.jsonl"
ROTATE_BYTES = 32 * 1024 * 1024
P = ParamSpec("P")
R = TypeVar("R")
_inside: ContextVar[bool] = ContextVar("agnes_logging_call", default=False)


def log_path(dot: Path) -> Path:
    """The log of the workspace whose ``.agnes`` folder is ``dot``."""
    return dot / LOG_DIR / LOG_NAME


def new_session_id() -> str:
    """A session id that sorts by time: ``20261103T140211-a1b2c3``."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class QueryLog:
    def __init__(self, path: Path, session: str | None = None) -> None:
        self.path = path
        self.session = session or new_session_id()
        self._warned = False
        self._lock = threading.Lock()  # one line at a time from this process's threads

    @property
    def previous(self) -> Path:
        return self.path.with_name(self.path.stem + ".1" + self.path.suffix)

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=str, separators=(",", ":"), ensure_ascii=False)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a string that is not Unicode (SQL piped in Latin-1)
            line = json.dumps(entry, default=str, separators=(",", ":"))  # as \udcXX escapes
        try:
            with self._lock:
                self._write(line)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("the workspace's query log %s cannot be written: %s", self.path, exc)

    def _write(self, line: str) -> None:
        try:
            handle = self.path.open("a", encoding="utf-8")
        except FileNotFoundError:  # the first line: make the folder once
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a", encoding="utf-8")
        with handle:
            handle.write(line + "\n")
            size = handle.tell()
        if size > ROTATE_BYTES:
            self.path.replace(self.previous)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first (lines that do not parse are skipped)."""
        for path in (self.previous, self.path):
            try:
                handle = path.open(encoding="utf-8")
            except FileNotFoundError:
                continue
            with handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict):
                        yield entry


class HasQueryLog(Protocol):
    query_log: QueryLog | None


S = TypeVar("S", bound=HasQueryLog)


def logged(
    tool: str, arguments: Callable[P, dict[str, Any]]
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Log each call of a backend method as one step of ``tool``; ``arguments`` turns the
    call's arguments into the step's canonical ones. A call made inside a logged call
    (one tool using another) is not logged again."""

    def decorate(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            log = self.query_log
            if log is None or _inside.get():
                return method(self, *args, **kwargs)
            at, started = dt.datetime.now(dt.UTC), time.perf_counter()
            token = _inside.set(True)
            try:
                answer = method(self, *args, **kwargs)
            except AgnesError as exc:
                log.append(_entry(log, tool, at, started, arguments(*args, **kwargs), exc))
                raise
            finally:
                _inside.reset(token)
            log.append(_entry(log, tool, at, started, arguments(*args, **kwargs), answer))
            return answer

        functools.update_wrapper(run, method)
        return run

    return decorate


def _entry(
    log: QueryLog,
    tool: str,
    at: dt.datetime,
    started: float,
    arguments: dict[str, Any],
    outcome: object,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "at": at.isoformat(),
        "session": log.session,
        "tool": tool,
        "arguments": arguments,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if isinstance(outcome, AgnesError):
        entry.update(result=outcome.code, message=outcome.message, hint=outcome.hint)
        if isinstance(arguments.get("sql"), str):
            entry["sql"] = arguments["sql"]
        return entry
    entry["result"] = "ok"
    entry.update(_said(outcome))
    if "sql" not in entry and isinstance(arguments.get("sql"), str):
        entry["sql"] = arguments["sql"]
    return entry


def _said(outcome: object) -> dict[str, Any]:
    """What a step's answer says about it: rows, cut, engine, tables, bytes, SQL."""
    if isinstance(outcome, Answer):
        said: dict[str, Any] = {
            "row_count": outcome.row_count,
            "truncated": outcome.truncated,
            "engine": outcome.provenance.engine,
            "tables": [t.id for t in outcome.provenance.tables],
            "bytes_scanned": outcome.bytes_scanned,
        }
        if outcome.sql:
            said["sql"] = outcome.sql
        return said
    if isinstance(outcome, BaseModel):  # SnapshotInfo, SnapshotEstimate
        data = outcome.model_dump(mode="json")
        said = {"tables": [data["table_id"]]} if "table_id" in data else {}
        if "rows" in data:
            said.update(row_count=data["rows"], truncated=data.get("truncated"))
        scanned = data.get("bytes_scanned", data.get("estimated_scan_bytes"))
        if scanned is not None:
            said["bytes_scanned"] = scanned
        if data.get("sql"):
            said["sql"] = data["sql"]
        return said
    return {}
