"""The flags that describe a table, shared by register-table and update-table.

Only argparse and the stdlib here: the parser is built on every ``agnes --help``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# flag -> body field, for the spec flags shared by register-table and update-table
SPEC_FLAGS = {
    "source_type": "source_type",
    "bucket": "bucket",
    "source_table": "source_table",
    "query_mode": "query_mode",
    "description": "description",
    "sync_schedule": "sync_schedule",
    "sync_strategy": "sync_strategy",
    "incremental_column": "incremental_column",
    "incremental_window_days": "incremental_window_days",
    "max_history_days": "max_history_days",
    "where": "where_filters",
    "partition_by": "partition_by",
    "partition_granularity": "partition_granularity",
    "server_only": "server_only",
}


def add_spec_flags(parser: argparse.ArgumentParser, *, for_update: bool) -> None:
    """The flags describing a table; on update every one is optional."""
    parser.add_argument("--source-type", required=not for_update, help="configured source name")
    parser.add_argument("--bucket", help="folder (files) or schema/dataset (warehouses)")
    parser.add_argument("--source-table", help="file name or glob (files) or table name")
    parser.add_argument("--query-mode", choices=["local", "materialized", "remote"])
    parser.add_argument("--query", help="SQL of a materialized table, or @file.sql")
    parser.add_argument("--description")
    parser.add_argument("--sync-schedule", help="'every 15m', 'hourly', 'daily 03:00' or cron")
    parser.add_argument("--sync-strategy", choices=["full_refresh", "incremental", "partitioned"])
    parser.add_argument("--primary-key", help="column(s), comma-separated")
    parser.add_argument("--incremental-column")
    parser.add_argument("--incremental-window-days", type=int, help="re-read this many days back")
    parser.add_argument("--max-history-days", type=int, help="drop rows older than this")
    parser.add_argument("--where", help='row filter applied at extraction, e.g. "amount > 0"')
    parser.add_argument("--partition-by", help="DATE/TIMESTAMP column")
    parser.add_argument("--partition-granularity", choices=["day", "month", "year"])
    parser.add_argument(
        "--source-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reader option, e.g. delimiter=';' or header=true (repeatable; JSON values)",
    )
    if for_update:
        parser.add_argument("--server-only", action=argparse.BooleanOptionalAction, default=None)
    else:
        parser.add_argument(
            "--server-only", action="store_true", default=None, help="never distributed to laptops"
        )


def spec_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        field: getattr(args, flag)
        for flag, field in SPEC_FLAGS.items()
        if getattr(args, flag) is not None
    }
    if args.query is not None:
        body["source_query"] = _read_query(args.query)
    if args.primary_key is not None:
        body["primary_key"] = [k.strip() for k in args.primary_key.split(",") if k.strip()]
    if args.source_option:
        body["source_options"] = dict(_option(o) for o in args.source_option)
    return body


def _read_query(value: str) -> str:
    if value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8")
    return value


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--source-option needs KEY=VALUE, got '{text}'")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw
