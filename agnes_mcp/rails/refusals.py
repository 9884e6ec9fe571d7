"""Typed refusals of the SQL rails: one class per rule, a stable ``code``, a one-line message
and a ``next_step`` an agent can act on (the tool to call with its arguments, and the CLI).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agnes_mcp.rails.given_text import given_text, problems_said, validation_problems
from agnes_sync.caller import CallCancelled
from agnes_sync.errors import AgnesError
from agnes_sync.snapshot_meta import SnapshotMeta


def next_step(tool: str, cli: str | None = None, **arguments: Any) -> dict[str, Any]:
    """What to do instead: an MCP tool call (name + arguments) and the CLI equivalent."""
    step: dict[str, Any] = {"tool": tool, "arguments": arguments}
    if cli:
        step["cli"] = cli
    return step


class InvalidArguments(AgnesError):
    code = "invalid_arguments"
    status = 400
    default_hint = (
        "Pass each argument as the tool's input schema gives it (tools/list): a list is a "
        'JSON array, e.g. ["a", "b"], not "a,b".'
    )


def invalid_arguments(tool: str, exc: ValidationError) -> InvalidArguments:
    """The caller's arguments did not match what ``tool`` (an MCP tool, a notebook or CLI
    call) takes: each problem named."""
    problems = validation_problems(exc, "argument", "arguments")
    return InvalidArguments(
        f"{tool}: {problems_said(problems, 'argument')}.", details={"problems": problems}
    )


def bounded(argument: str, value: int, low: int, high: int | None = None) -> int:
    """``value`` when ``low <= value <= high``; else the caller is told the range (every
    front end passes its row counts here, so ``0`` never reads as "no limit")."""
    if value < low or (high is not None and value > high):
        said = f"from {low:,} to {high:,}" if high is not None else f"{low:,} or more"
        raise InvalidArguments(
            f"{argument} must be {said}, not {value:,}.",
            hint=f"Pass a {argument} {said}, or leave it out for the default.",
            details={
                "problems": [
                    {"argument": argument, "problem": f"must be {said}", "given": given_text(value)}
                ]
            },
        )
    return value


class QueryRefused(AgnesError):
    """The rails refused a query; ``details['next_step']`` says what to do instead."""

    code = "query_refused"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        next: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if next is not None:
            merged["next_step"] = next
        super().__init__(message, hint=hint, details=merged)

    @classmethod
    def relayed(
        cls,
        status: int,
        code: str,
        message: str,
        hint: str | None,
        details: dict[str, Any] | None,
        next_step: dict[str, Any] | None,
    ) -> QueryRefused:
        """A refusal another process made (the server, seen from a workspace), with its
        own code and status, so callers on both sides catch one type."""
        refusal = cls(message, hint=hint, next=next_step, details=details)
        refusal.code, refusal.status = code, status
        return refusal

    @property
    def next_step(self) -> dict[str, Any] | None:
        step = self.details.get("next_step")
        return step if isinstance(step, dict) else None

    def to_dict(self) -> dict[str, Any]:
        """The error object, with ``next_step`` at the top where an agent looks first."""
        body = super().to_dict()
        details = dict(body.get("details", {}))
        step = details.pop("next_step", None)
        if details:
            body["details"] = details
        else:
            body.pop("details", None)
        body["next_step"] = step
        return body


class SqlParseError(QueryRefused):
    code = "sql_parse_error"
    default_hint = "Fix the SQL at the line and column given; only one SELECT is accepted."


class SqlTooLarge(QueryRefused):
    code = "sql_too_large"
    default_hint = "Send a shorter or less deeply nested query."


class MultipleStatements(QueryRefused):
    code = "multiple_statements"
    default_hint = "Send one SELECT per call."


class ReadOnly(QueryRefused):
    code = "read_only"
    default_hint = "Only SELECT queries (WITH, UNION, VALUES, subqueries) are accepted."


class StatementNotAllowed(QueryRefused):
    code = "statement_not_allowed"
    default_hint = "Use the schema and describe tools instead of DESCRIBE, SHOW or SUMMARIZE."


class FunctionNotAllowed(QueryRefused):
    code = "function_not_allowed"
    default_hint = "Query registered tables by name; files and outside resources are not reachable."


class InternalObject(QueryRefused):
    code = "internal_object_not_allowed"
    default_hint = "Use the catalog tool to see the tables you may query."


class TableNotFound(QueryRefused):
    code = "table_not_found"
    status = 404


class TableNotGranted(QueryRefused):
    """Not raised by this server: a table the caller may not read is answered as one that
    is not there (:class:`TableNotFound`), as the catalog hides it. Kept to name the
    refusal of a server from before that change, relayed through a workspace."""

    code = "table_not_granted"
    status = 403
    default_hint = "Ask an admin to grant one of your groups access to the table."


class TableNameAmbiguous(QueryRefused):
    code = "table_name_ambiguous"
    status = 409


def name_ambiguous(name: str, kind: str, source: str) -> TableNameAmbiguous:
    """``name`` is both a table the caller may read and their own ``kind`` (a snapshot
    of ``source``, or a kept result): which one a query means cannot be told, so it is
    asked, never guessed."""
    what = f"your snapshot of {source}" if kind == "snapshot" else f"your kept {kind}"
    return TableNameAmbiguous(
        f"'{name}' names both a table you may query and {what} (the table was added "
        "after it was made): the query does not say which.",
        hint=f"Drop your {kind} and take it again under another name; '{name}' is then the table.",
        next=next_step("snapshot_drop", f"agnes snapshot drop {name}", name=name)
        if kind == "snapshot"
        else None,
        details={"table": name, "kind": kind},
    )


def shadowed_note(name: str) -> str:
    """What a listing says of a snapshot whose name a table took since."""
    return (
        f"A table named '{name}' was added after this snapshot was taken: a query naming "
        f"'{name}' is refused as ambiguous. Drop this snapshot and take it again under "
        "another name."
    )


class RemoteTableNeedsSnapshot(QueryRefused):
    code = "remote_table_needs_snapshot"
    default_hint = (
        "Remote tables stay in the warehouse: run the query with query_remote (scan-capped), "
        "or fetch a filtered subset with snapshot_create and query that locally."
    )


class LocalTableInRemoteQuery(QueryRefused):
    code = "local_table_in_remote_query"
    default_hint = "query_remote runs in the warehouse; query local tables with the query tool."


class MixedEngines(QueryRefused):
    code = "mixed_engines"
    default_hint = "One remote query reads one warehouse; combine results locally from snapshots."


class PathNotRegistered(QueryRefused):
    code = "path_not_registered"
    default_hint = "Only registered tables can be queried; use the catalog tool to find them."


class RemoteScanTooLarge(QueryRefused):
    code = "remote_scan_too_large"
    default_hint = "Narrow the query (fewer columns, a tighter date range) or snapshot a subset."


class RemoteEstimateFailed(QueryRefused):
    code = "remote_estimate_failed"
    status = 502
    default_hint = "The warehouse could not price the query; check the SQL and try again."


class BudgetExhausted(QueryRefused):
    code = "budget_exhausted"
    status = 429
    default_hint = "Your daily remote-scan budget is spent; it resets at 00:00 UTC."


class TooManyConcurrent(QueryRefused):
    code = "too_many_concurrent"
    status = 429
    default_hint = "Wait for one of your running remote queries to finish."


class QueryTimeout(QueryRefused):
    code = "query_timeout"
    status = 504
    default_hint = "Narrow the query (filter, aggregate, LIMIT) or snapshot a subset first."


# A query stopping this much past its timeout says when it stopped, and why so late.
LATE_STOP_SECONDS = 1.0


def query_timeout(
    seconds: float, ran: float | None = None, *, still_stopping: bool = False
) -> QueryTimeout:
    """A query stopped at the query timeout, naming it (locally and in a warehouse);
    ``ran``: the seconds it took to stop, said when it stopped late; ``still_stopping``:
    said ``ran`` seconds after it started, while the engine is still stopping it."""
    late = ""
    details: dict[str, Any] = {"limit_seconds": seconds}
    if still_stopping:
        late = (
            f" The engine is still stopping it, {ran or seconds:.1f} s after it started: it "
            "stops a query between batches of 2,048 rows, and a function that is slow on "
            "each row (a regular expression with a large pattern over long text) holds a "
            "batch that long. It counts among your running queries until it has stopped."
        )
        details["still_stopping"] = True
    elif ran is not None and ran > seconds + LATE_STOP_SECONDS:
        late = (
            f" It stopped only after {ran:.1f} s: the engine stops a query between batches "
            "of 2,048 rows, and a function that is slow on each row (a regular expression "
            "with a large pattern over long text) made one batch run that long."
        )
        details["stopped_after_seconds"] = round(ran, 1)
    return QueryTimeout(
        f"The query ran longer than {seconds:g} s and was stopped (the query timeout: "
        f"query_timeout_seconds on a server, AGNES_QUERY_TIMEOUT_SECONDS in a workspace).{late}",
        details=details,
    )


class QueryCancelled(QueryRefused, CallCancelled):
    """A query stopped because its caller gave up (:class:`CallCancelled`, as a query
    refusal: a remote query's refusal carries what it read, and is charged so)."""

    code = CallCancelled.code
    status = CallCancelled.status
    default_hint = CallCancelled.default_hint


def query_cancelled() -> QueryCancelled:
    return QueryCancelled("The call was cancelled by its caller, and its query stopped.")


class ServerStopping(QueryRefused):
    """A query stopped because the server is stopping (Ctrl-C, a service manager's stop):
    it would otherwise hold the stop until uvicorn's grace ran out, and its caller got a
    bare ``500 Internal Server Error``."""

    code = "server_stopping"
    status = 503
    default_hint = "The server is stopping (a restart?): send the query again in a moment."


# What a server stopping asks its callers to wait before they try again.
STOPPING_RETRY_SECONDS = 5


def server_stopping() -> ServerStopping:
    return ServerStopping(
        "The server is stopping, and this query was stopped with it.",
        details={"retry_after_seconds": STOPPING_RETRY_SECONDS},
    )


class QueryFailed(QueryRefused):
    """The query passed the rails but the engine reported an error (e.g. a type error)."""

    code = "query_failed"
    default_hint = "Fix the query; the message is the engine's."


class NoRemoteTable(QueryRefused):
    code = "no_remote_table"
    status = 400
    default_hint = (
        "query_remote runs on remote tables; a query that reads none (or whose CTE shadows "
        "the remote table's name) runs with query."
    )


class RemotePartTooLarge(QueryRefused):
    """A hybrid query's remote part was cut by a result cap: joined or aggregated, a part
    missing rows gives a wrong answer that looks whole, so the query does not run."""

    code = "remote_part_too_large"
    status = 400
    default_hint = (
        "Make the part smaller in the warehouse (aggregate, filter or select fewer columns "
        "in its SQL), or take a snapshot of what you need and query that."
    )


class SnapshotTooLarge(QueryRefused):
    code = "snapshot_too_large"
    status = 400
    default_hint = (
        "A snapshot holds every row its filter matches or none: select fewer columns and "
        "narrow the where clause (the partition column first), then take it again."
    )


class SnapshotExists(QueryRefused):
    code = "snapshot_exists"
    status = 409
    default_hint = "Pick another name, or drop the existing snapshot first (snapshot_drop)."


class SnapshotQuotaExceeded(QueryRefused):
    code = "snapshot_quota_exceeded"
    status = 413
    default_hint = "Drop snapshots you no longer need (snapshot_list, snapshot_drop)."


class SnapshotExpired(QueryRefused):
    code = "snapshot_expired"
    status = 410


def snapshot_expired(meta: SnapshotMeta) -> SnapshotExpired:
    """A query naming a snapshot past its lifetime: said so, with the call that takes it
    again (never "there is no table", nor its old rows)."""
    at = meta.expires_at
    when = f" at {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
    arguments: dict[str, Any] = {"table": meta.table_id, "select": meta.select, "name": meta.name}
    if meta.where:
        arguments["where"] = meta.where
    where = f' --where "{meta.where}"' if meta.where else ""
    return SnapshotExpired(
        f"Your snapshot '{meta.name}' expired{when} (its ttl_seconds).",
        hint="Take it again (after snapshot_drop, or with the same call and another name).",
        next=next_step(
            "snapshot_create",
            f"agnes snapshot create {meta.table_id} --select {','.join(meta.select)}{where} "
            f"--as {meta.name}",
            **arguments,
        ),
        details={"table": meta.name, "expired_at": at.isoformat() if at is not None else None},
    )


class SnapshotInvalid(QueryRefused):
    code = "snapshot_invalid"
    default_hint = "A snapshot takes a column list and a predicate in the table's SQL flavor."


# Hints of the snapshot refusals that are not about the spec's columns or predicate.
SNAPSHOT_NAME_TAKEN_HINT = (
    "Snapshots, tables and kept results (result_...) share one set of names: name the "
    "snapshot after what it holds, e.g. 'web_sessions_october'."
)
SNAPSHOT_OF_SERVER_TABLE_HINT = (
    "Snapshots are taken of remote tables; a server table is read as it is, with the query "
    "tool (in a workspace, agnes pull keeps a copy of it)."
)
