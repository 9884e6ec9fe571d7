"""The analyst's commands, over the same workspace backend as the MCP tools:
``catalog``, ``schema``, ``describe``, ``query``, ``disk-info`` and ``metrics``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from cli import exit_codes
from cli.answer_output import print_answer
from cli.output import counted, emit, print_json, print_message, printable, size
from cli.workspace_session import open_backend

if TYPE_CHECKING:
    from agnes_mcp.metrics.summary import MetricDetail


METRIC_COLUMNS = [
    ("id", "id"),
    ("display_name", "name"),
    ("unit", "unit"),
    ("grain", "grain"),
    ("tables", "tables"),
    ("dimensions", "dimensions"),
]


def _show_metric(detail: MetricDetail, as_json: bool) -> None:
    if as_json:
        print_json(detail.model_dump(mode="json"))
        return
    import yaml

    m = detail.summary
    print_message(
        f"{m.id}: {m.display_name}\n{m.description.strip()}\n"
        f"unit: {m.unit or '-'} · grain: {m.grain or '-'} · tables: {', '.join(m.tables)} · "
        f"dimensions: {', '.join(m.dimensions) or '-'}\n"
    )
    print_message(yaml.safe_dump(detail.definition, sort_keys=False).rstrip("\n"))


def metrics_list(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        listing = backend.metrics_list(args.search)
    metrics = [m.model_dump(mode="json") for m in listing.metrics]
    data: dict[str, Any] = {"metrics": metrics}
    if listing.notes:
        data["notes"] = listing.notes
    emit(
        data,
        as_json=args.json,
        rows=metrics,
        columns=METRIC_COLUMNS,
        message="\n".join(
            [
                f"{counted(len(metrics), 'metric')}. A definition: agnes metrics show ID; "
                "a number: agnes metrics query ID.",
                *listing.notes,
            ]
        ),
    )
    return exit_codes.OK


def metric_show(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        _show_metric(backend.metric_show(args.id), args.json)
    return exit_codes.OK


def catalog(args: argparse.Namespace) -> int:
    _refuse_ignored(args)
    with open_backend(args) as backend:
        if args.show:
            _show_metric(backend.metric_show(args.show), args.json)
            return exit_codes.OK
        listing = backend.catalog(args.search, args.mode)
    metrics = listing.metrics
    if args.metrics:
        listed = [m.model_dump(mode="json") for m in metrics]
        emit(
            {"metrics": listed, **({"notes": listing.notes} if listing.notes else {})},
            as_json=args.json,
            rows=listed,
            columns=METRIC_COLUMNS,
            message="\n".join(listing.notes) or None,
        )
        return exit_codes.OK
    rows = [t.model_dump(mode="json") for t in listing.tables]
    said = [f"{counted(len(metrics), 'metric')}: agnes metrics list"] if metrics else []
    data: dict[str, Any] = {"tables": rows, "metrics": [m.model_dump(mode="json") for m in metrics]}
    if listing.notes:  # offline, the workspace lists the last catalog it saw, and says so
        data["notes"] = listing.notes
        said += listing.notes
    emit(
        data,
        as_json=args.json,
        rows=rows,
        columns=[
            ("id", "table"),
            ("query_mode", "mode"),
            ("rows", "rows"),
            ("freshness", "synced"),
            ("in_workspace", "here"),
            ("description", "description"),
        ],
        message="\n".join(said) or None,
    )
    return exit_codes.OK


def _refuse_ignored(args: argparse.Namespace) -> None:
    """Options ``catalog`` would accept and do nothing with: a usage error naming them
    (``--show`` shows one metric whatever the others say; ``--mode`` is a table's)."""
    if args.show:
        given = [f for f, v in (("--search", args.search), ("--mode", args.mode)) if v]
        given += ["--metrics"] if args.metrics else []
        if given:
            raise argparse.ArgumentTypeError(
                f"--show shows one metric's definition; {' and '.join(given)} "
                f"{'does' if len(given) == 1 else 'do'} not apply to it: give one or the other"
            )
    elif args.metrics and args.mode:
        raise argparse.ArgumentTypeError(
            "--mode lists tables of one query mode; metrics have none: drop --mode, or "
            "--metrics to list tables"
        )


def schema(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        found = backend.schema(args.table)
        data = found.model_dump(mode="json")
        rows = [
            {
                **c,
                "nulls": (c.get("stats") or {}).get("null_share"),
                "range": _range(c.get("stats")),
            }
            for c in data["columns"]
        ]
        emit(
            data,
            as_json=args.json,
            rows=rows,
            columns=[
                ("name", "column"),
                ("type", "type"),
                ("nulls", "null share"),
                ("range", "min..max"),
            ],
            title=f"{found.table} ({found.query_mode})",
            message="\n".join(found.notes) or None,
        )
        return exit_codes.OK


def _range(stats: dict[str, Any] | None) -> str | None:
    if not stats or stats.get("min") is None:
        return None
    return f"{stats['min']}..{stats['max']}"


def describe(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        answer = backend.describe(args.table, args.n)
    return print_answer(answer, "json" if args.json else "table", flag="-n")


def query(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        sql = sys.stdin.read() if args.sql == "-" else args.sql
        answer = (
            backend.query_remote(sql, args.limit) if args.remote else backend.query(sql, args.limit)
        )
    return print_answer(answer, "json" if args.json else args.format)


DISK_KEYS = frozenset(
    {
        "workspace",
        "data_bytes",
        "tables",
        "snapshot_bytes",
        "snapshots",
        "result_bytes",
        "cache_bytes",
        "free_bytes",
    }
)


def disk_info(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        info = backend.disk_info().model_dump()
    said = {
        "workspace": info["workspace"],
        "data": f"{size(info['data_bytes'])} ({counted(info['tables'], 'table')})",
        "snapshots": f"{size(info['snapshot_bytes'])} ({info['snapshots']:,})",
        "results": size(info["result_bytes"]),
        "cache": size(info["cache_bytes"]),
        "free": size(info["free_bytes"]),
    }
    for key, value in info.items():  # anything newer, in the same units
        if key not in DISK_KEYS:
            in_bytes = key.endswith("_bytes") and isinstance(value, int)
            said[key.removesuffix("_bytes")] = size(value) if in_bytes else value
    rows = [{"what": k, "value": v} for k, v in said.items()]
    emit(info, as_json=args.json, rows=rows, columns=[("what", "what"), ("value", "value")])
    return exit_codes.OK


def metrics_query(args: argparse.Namespace) -> int:
    from agnes_mcp.metrics.compiler import MetricRequest, TimeRange

    filters: dict[str, Any] = {}
    for item in args.filter:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--filter takes DIMENSION=VALUE, not '{item}'")
        values = value.split(",")
        filters[key] = values if len(values) > 1 else value
    window = None
    if args.start or args.end:
        window = TimeRange(
            start=dt.date.fromisoformat(args.start) if args.start else None,
            end=dt.date.fromisoformat(args.end) if args.end else None,
        )
    request = MetricRequest(args.dimension, filters, args.grain, window)
    with open_backend(args) as backend:
        answer = backend.metric_query(args.id, request, args.limit)
    form = "json" if args.json else args.format
    if form != "json":
        said = f"-- {answer.metric_variant or 'expression'} ({answer.dialect}):\n{answer.sql}"
        # CSV keeps stdout pure data: the SQL goes to stderr there.
        (sys.stderr if form == "csv" else sys.stdout).write(printable(said) + "\n")
    return print_answer(answer, form)
