"""The analyst's commands, over the same workspace backend as the MCP tools:
``catalog``, ``schema``, ``describe``, ``query``, ``disk-info`` and ``metrics``."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from cli import exit_codes
from cli.output import emit, print_json, print_message, print_table
from cli.workspace_session import open_backend

if TYPE_CHECKING:
    from agnes_mcp.rails.results import Answer


def catalog(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        if args.show:
            detail = backend.metric_show(args.show)
            emit(detail.model_dump(mode="json"), as_json=args.json)
            if not args.json:
                import yaml

                sys.stdout.write(yaml.safe_dump(detail.definition, sort_keys=False))
            return exit_codes.OK
        tables, metrics = backend.catalog(args.search, args.mode)
        if args.metrics:
            data = [m.model_dump(mode="json") for m in metrics]
            emit(
                {"metrics": data},
                as_json=args.json,
                rows=data,
                columns=[
                    ("id", "id"),
                    ("display_name", "name"),
                    ("unit", "unit"),
                    ("tables", "tables"),
                ],
            )
            return exit_codes.OK
        rows = [t.model_dump(mode="json") for t in tables]
        emit(
            {"tables": rows, "metrics": [m.model_dump(mode="json") for m in metrics]},
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
            message=f"{len(metrics)} metrics: agnes catalog --metrics" if metrics else None,
        )
        return exit_codes.OK


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
        )
        return exit_codes.OK


def _range(stats: dict[str, Any] | None) -> str | None:
    if not stats or stats.get("min") is None:
        return None
    return f"{stats['min']}..{stats['max']}"


def describe(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        _print_answer(backend.describe(args.table, args.n), "table" if not args.json else "json")
        return exit_codes.OK


def query(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        sql = sys.stdin.read() if args.sql == "-" else args.sql
        answer = (
            backend.query_remote(sql, args.limit) if args.remote else backend.query(sql, args.limit)
        )
        _print_answer(answer, "json" if args.json else args.format)
        return exit_codes.OK


def _print_answer(answer: Answer, form: str) -> None:
    from agnes_mcp.rails.results import columns_of, json_value

    table = answer.table
    if form == "json":
        print_json(
            {
                "columns": [c.model_dump() for c in columns_of(table)],
                "rows": [[json_value(v) for v in row.values()] for row in table.to_pylist()],
                "row_count": table.num_rows,
                "truncated": answer.truncated,
                "reason": answer.reason,
                "bytes_scanned": answer.bytes_scanned,
                "remaining_budget_bytes": answer.remaining_budget_bytes,
                "sql": answer.sql,
                "provenance": answer.provenance.model_dump(mode="json"),
            }
        )
        return
    if form == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow(["" if v is None else json_value(v) for v in row.values()])
        return
    names = table.column_names
    print_table(
        [{str(i): v for i, v in enumerate(row.values())} for row in table.to_pylist()],
        [(str(i), name) for i, name in enumerate(names)],
    )
    p = answer.provenance
    line = (
        f"{table.num_rows} rows · {p.engine} · {answer.bytes_scanned:,} bytes scanned · "
        f"{p.duration_ms:g} ms"
    )
    if answer.remaining_budget_bytes is not None:
        line += f" · {answer.remaining_budget_bytes:,} bytes of daily budget left"
    if answer.truncated:
        line += f" · truncated ({answer.reason}): raise --limit, filter or aggregate"
    sys.stderr.write(line + "\n")


def disk_info(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        info = backend.disk_info().model_dump()
        rows = [{"what": k, "value": v} for k, v in info.items()]
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
        if not args.json:
            print_message(
                f"-- {answer.metric_variant or 'expression'} ({answer.dialect}):\n{answer.sql}"
            )
        _print_answer(answer, "json" if args.json else args.format)
        return exit_codes.OK
