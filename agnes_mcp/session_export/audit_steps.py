"""A user's steps from the server's audit log.

Every query through the rails is audited (``query``, ``query.remote``, ``describe``,
``snapshot.create``, ``metric.query``, ``query.estimate``) with its SQL, tables, engine,
bytes, rows and outcome (a refusal's code, message and hint). A row recorded during an MCP
tool call also carries the call's ``tool``, its ``arguments`` (the SQL aside) and the
``mcp_session`` (:mod:`agnes_mcp.session_export.tool_calls`): what repeating a snapshot or a
metric needs, since their SQL alone is not the call. Rows from the REST API lack them; a
metric is then repeated from the SQL it compiled to, and a snapshot is shown, not repeated.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any

from agnes_mcp.session_export.steps import MAX_STEPS, Step
from agnes_mcp.session_export.window import as_utc
from agnes_mcp.store.database import SystemStore

ACTION_TOOLS = {
    "query": "query",
    "query.remote": "query_remote",
    "describe": "describe",
    "snapshot.create": "snapshot_create",
    "snapshot.drop": "snapshot_drop",
    "metric.query": "metric_query",
    "query.estimate": "snapshot_estimate",
}
SERVER_ENGINE = "duckdb (server)"
OLD_SQL_CUT = 2000  # servers before session export kept this much of a query's SQL
_SESSION = "json_extract_string(params, '$.mcp_session')"
# An estimate is a step only when the snapshot_estimate tool made it (not the REST route).
_NO_REST_ESTIMATE = (
    "(action <> 'query.estimate' OR json_extract_string(params, '$.tool') = 'snapshot_estimate')"
)


@dataclass(frozen=True)
class Window:
    user_id: str
    session: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def where(self) -> tuple[str, list[Any]]:
        actions = ", ".join("?" for _ in ACTION_TOOLS)
        clauses = ["user_id = ?", f"action IN ({actions})", _NO_REST_ESTIMATE]
        params: list[Any] = [self.user_id, *ACTION_TOOLS]
        if self.session is not None:
            clauses.append(f"{_SESSION} = ?")
            params.append(self.session)
        if self.since is not None:
            clauses.append("occurred_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("occurred_at < ?")
            params.append(self.until)
        return " WHERE " + " AND ".join(clauses), params


def read_steps(store: SystemStore, window: Window) -> tuple[list[Step], int]:
    """The window's first :data:`MAX_STEPS` steps (oldest first) and how many it holds."""
    clause, params = window.where()
    with store.cursor() as cur:
        total = cur.execute(f"SELECT count(*) FROM audit_log{clause}", params).fetchone()
        rows = cur.execute(
            "SELECT occurred_at, action, resource, params, result FROM audit_log"
            f"{clause} ORDER BY id LIMIT ?",
            [*params, MAX_STEPS],
        ).fetchall()
    steps = [s for s in (step_of(*row) for row in rows) if s is not None]
    return steps, int(total[0]) if total else 0


def latest_session(store: SystemStore, user_id: str) -> str | None:
    """The MCP session of the user's newest audited step."""
    clause, params = Window(user_id).where()
    with store.cursor() as cur:
        row = cur.execute(
            f"SELECT {_SESSION} FROM audit_log{clause} AND {_SESSION} IS NOT NULL "
            "ORDER BY id DESC LIMIT 1",
            params,
        ).fetchone()
    return str(row[0]) if row and row[0] else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def step_of(
    occurred_at: dt.datetime, action: str, resource: str | None, raw: Any, result: str
) -> Step | None:
    """The step one audit row records, or None for one that is no step (an estimate made
    through the REST API)."""
    params: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    called = params.get("tool")
    tool = called if isinstance(called, str) else ACTION_TOOLS[action]
    if action == "query.estimate" and called != "snapshot_estimate":
        return None
    recorded = params.get("arguments")
    given: dict[str, Any] | None = recorded if isinstance(recorded, dict) else None
    sql = params.get("sql") if isinstance(params.get("sql"), str) else None
    engine = params.get("engine") if isinstance(params.get("engine"), str) else None
    said = params.get("refusal")
    refusal: dict[str, Any] = said if isinstance(said, dict) else {}
    tables = params.get("tables")
    table_ids = tuple(str(t) for t in tables) if isinstance(tables, list) else ()
    if not table_ids and resource:
        table_ids = tuple(resource.split(","))
    step = Step(
        at=as_utc(occurred_at),
        tool=tool,
        result=result,
        sql=sql,
        sql_cut=_cut(params, sql),
        tables=table_ids,
        engine=engine,
        bytes_scanned=_int(params.get("bytes_scanned", params.get("bytes_estimated"))),
        rows=_int(params.get("rows")),
        truncated=params.get("truncated") if isinstance(params.get("truncated"), bool) else None,
        message=refusal.get("message") if isinstance(refusal.get("message"), str) else None,
        hint=refusal.get("hint") if isinstance(refusal.get("hint"), str) else None,
        session=params.get("mcp_session") if isinstance(params.get("mcp_session"), str) else None,
    )
    return _with_arguments(step, given, resource, params)


def _cut(params: dict[str, Any], sql: str | None) -> bool:
    if sql is None:
        return False
    chars = params.get("sql_chars")
    if isinstance(chars, int):
        return chars > len(sql)
    # Rows written before the audit kept the whole SQL (and its length) may have been cut.
    return len(sql) == OLD_SQL_CUT


def _with_arguments(
    step: Step, given: dict[str, Any] | None, resource: str | None, params: dict[str, Any]
) -> Step:
    """``step`` with canonical arguments: the tool call's when recorded, else what the
    row itself says."""
    tool = step.tool
    if tool in ("query", "query_remote"):
        if given is None and tool == "query" and step.engine not in (None, SERVER_ENGINE):
            tool = "query_remote"  # a REST query in mode auto that ran in a warehouse
        limit = given.get("limit") if given else None
        return replace(step, tool=tool, arguments={"sql": step.sql, "limit": limit})
    if tool == "describe":
        asked = given or {}
        table = asked.get("table") or (resource.split(",")[0] if resource else None)
        n = asked.get("n") or _int(params.get("rows")) or 5
        return replace(step, arguments={"table": table, "n": n})
    if tool in ("snapshot_create", "snapshot_estimate"):
        if given is None:
            return replace(
                step,
                replayable=False,
                note="Taken through the REST API (a workspace's snapshot_create, or agnes "
                "snapshot create), whose call the server's log does not hold: export it from "
                "that workspace (agnes notebook export there).",
            )
        hours = given.get("ttl_hours")
        arguments = {
            "table": given.get("table"),
            "select": given.get("select"),
            "where": given.get("where"),
            "limit": given.get("limit"),
            "order_by": given.get("order_by"),
        }
        if tool == "snapshot_create":
            arguments["name"] = given.get("name")
            ttl = int(hours * 3600) if isinstance(hours, (int, float)) and hours > 0 else None
            arguments["ttl_seconds"] = ttl
        return replace(step, arguments=arguments)
    if tool == "metric_query":
        if given is None:
            remote = step.engine not in (None, SERVER_ENGINE)
            return replace(
                step,
                tool="query_remote" if remote else "query",
                arguments={"sql": step.sql, "limit": None},
                note="A metric computed through the REST API, whose parameters the server's "
                "log does not hold: this repeats the SQL it compiled to.",
            )
        return replace(
            step,
            arguments={
                "metric_id": given.get("id"),
                "dimensions": given.get("dimensions"),
                "grain": given.get("grain"),
                "time_range": given.get("time_range"),
                "filters": given.get("filters"),
                "limit": given.get("limit"),
            },
        )
    if tool == "snapshot_drop":  # the row names the snapshot, whoever dropped it
        name = (given or {}).get("name") or resource
        return replace(step, arguments={"name": name})
    return step
