"""The flags that describe a table, shared by register-table and update-table.

Only argparse and the stdlib here: the parser is built on every ``agnes --help``, so the
flags are written out rather than made from the pydantic ``TableSpec``
(``agnes_sync/table_spec.py``). ``tests/test_cli_contract.py`` checks that they cover
exactly its fields: each flag sets one field, each field has a flag or a reason below.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

# flag (its dest) -> the TableSpec field it sets
SPEC_FLAGS = {
    "source_type": "source_type",
    "bucket": "bucket",
    "source_table": "source_table",
    "query_mode": "query_mode",
    "query": "source_query",
    "description": "description",
    "sync_schedule": "sync_schedule",
    "sync_strategy": "sync_strategy",
    "primary_key": "primary_key",
    "incremental_column": "incremental_column",
    "incremental_window_days": "incremental_window_days",
    "max_history_days": "max_history_days",
    "where": "where_filters",
    "partition_by": "partition_by",
    "partition_granularity": "partition_granularity",
    "source_option": "source_options",
    "server_only": "server_only",
}

# TableSpec fields no flag sets, and why
FIELDS_WITHOUT_FLAG = {
    "id": "the positional NAME argument",
    "name": "the display name defaults to the id; set it through the API",
    "initial_load_chunk_days": "set it through the API",
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
    """The request body of the spec flags given (those left out are not sent)."""
    body: dict[str, Any] = {}
    for flag, spec_field in SPEC_FLAGS.items():
        value = getattr(args, flag)
        if value is None or value == []:
            continue
        body[spec_field] = _CONVERT[flag](value) if flag in _CONVERT else value
    return body


def _read_query(value: str) -> str:
    if value.startswith("@"):
        from cli.failures import read_text_file

        return read_text_file(value[1:])
    return value


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--source-option needs KEY=VALUE, got '{text}'")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def _keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def _options(values: list[str]) -> dict[str, Any]:
    return dict(_option(o) for o in values)


# flags whose text becomes another value in the body
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "query": _read_query,
    "primary_key": _keys,
    "source_option": _options,
}
