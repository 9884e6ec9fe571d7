"""Python source for a step: one call of the notebook API, every value written as a Python
literal (``repr`` of str, int, bool, None and lists and dicts of them), never as text
pasted into code, so no SQL, name or predicate can break out of its string."""

from __future__ import annotations

import math
from typing import Any

from agnes_mcp.session_export.steps import Step

LINE = 88
INDENT = "    "


def literal(value: Any) -> str:
    """``value`` as Python source that evaluates back to it."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"float({str(value)!r})"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    return repr(str(value))


def text_literal(text: str, indent: str = "") -> str:
    """A string literal; a text of several lines as one literal per line in parentheses
    (adjacent literals join), so SQL reads as SQL."""
    lines = text.splitlines(keepends=True)
    if len(lines) <= 1:
        return repr(text)
    inner = indent + INDENT
    return "(\n" + "".join(f"{inner}{line!r}\n" for line in lines) + f"{indent})"


def call(target: str, method: str, arguments: list[tuple[str | None, str]]) -> str:
    """``target = ws.method(...)``: positional arguments have no name; one line when short."""
    parts = [value if name is None else f"{name}={value}" for name, value in arguments]
    one = f"{target} = ws.{method}({', '.join(parts)})"
    if len(one) <= LINE and "\n" not in one:
        return one
    body = "".join(f"{INDENT}{part},\n" for part in parts)
    return f"{target} = ws.{method}(\n{body})"


def _optional(arguments: dict[str, Any], *names: str) -> list[tuple[str | None, str]]:
    """Keyword arguments for the names that hold something (None, [] and {} left out)."""
    return [
        (name, literal(arguments[name]))
        for name in names
        if arguments.get(name) not in (None, [], {})
    ]


def _time_range(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    return literal({"start": start, "end": end})


def step_call(step: Step, target: str) -> str | None:
    """The notebook API call repeating ``step``, or None when its log lacks what it needs."""
    a = step.arguments
    if step.tool in ("query", "query_remote"):
        sql = a.get("sql") if isinstance(a.get("sql"), str) else step.sql
        if not sql:
            return None
        return call(target, step.tool, [(None, text_literal(sql, INDENT)), *_optional(a, "limit")])
    if step.tool == "describe":
        if not isinstance(a.get("table"), str):
            return None
        return call(target, "describe", [(None, literal(a["table"])), *_optional(a, "n")])
    if step.tool in ("snapshot_estimate", "snapshot_create"):
        if not isinstance(a.get("table"), str) or not a.get("select"):
            return None
        if step.tool == "snapshot_create" and not isinstance(a.get("name"), str):
            return None
        method = "snapshot" if step.tool == "snapshot_create" else "snapshot_estimate"
        names = ("name",) if step.tool == "snapshot_create" else ()
        keywords = [(n, literal(a[n])) for n in ("select", *names)]
        where = a.get("where")
        if isinstance(where, str):
            keywords.append(("where", text_literal(where, INDENT)))
        keywords += _optional(a, "limit", "order_by")
        if step.tool == "snapshot_create":
            keywords += _optional(a, "ttl_seconds")
        return call(target, method, [(None, literal(a["table"])), *keywords])
    if step.tool == "snapshot_drop":
        if not isinstance(a.get("name"), str):
            return None
        name = literal(a["name"])
        # dropped only if there: one taken before the exported steps may be gone already
        return (
            f"{target} = ws.snapshot_drop({name}) if {name} in "
            "[s.name for s in ws.snapshots()] else None"
        )
    if step.tool == "metric_query":
        if not isinstance(a.get("metric_id"), str):
            return None
        keywords = _optional(a, "dimensions", "grain")
        span = _time_range(a.get("time_range"))
        if span is not None:
            keywords.append(("time_range", span))
        keywords += _optional(a, "filters", "limit")
        return call(target, "metric", [(None, literal(a["metric_id"])), *keywords])
    return None


def snapshot_setup(step: Step) -> str:
    """Before a snapshot is taken again: drop one of that name left by an earlier run (or
    by the session itself, in its workspace), so the step repeats rather than fails."""
    name = literal(step.arguments["name"])
    return (
        "# Taken afresh: a snapshot of this name (from the session or an earlier run) is "
        "dropped first.\n"
        f"if {name} in [s.name for s in ws.snapshots()]:\n"
        f"{INDENT}ws.snapshot_drop({name})\n"
    )


def commented(source: str) -> str:
    return "".join(f"# {line}" if line.strip() else "#\n" for line in source.splitlines(True))
