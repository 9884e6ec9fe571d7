"""``agnes admin register-table|list-tables|update-table|unregister-table|sync|...``."""

from __future__ import annotations

import argparse
from typing import Any

from cli import exit_codes
from cli.analyst_parsers import HISTORY_MAX
from cli.commands.session import client_for, segment
from cli.output import counted, emit, print_message
from cli.table_flags import spec_body

TABLE_COLUMNS = [
    ("id", "Table"),
    ("source_type", "Source"),
    ("query_mode", "Mode"),
    ("sync_strategy", "Strategy"),
    ("sync_schedule", "Schedule"),
    ("status", "Status"),
    ("rows", "Rows"),
    ("last_success_at", "Last sync"),
]
RESULT_COLUMNS = [
    ("table_id", "Table"),
    ("status", "Status"),
    ("rows", "Rows"),
    ("files", "Files"),
    ("unchanged_parts", "Unchanged parts"),
    ("attempts", "Attempts"),
    ("seconds", "Seconds"),
    ("message", "Error"),
]
STATUS_COLUMNS = [
    ("table_id", "Table"),
    ("query_mode", "Mode"),
    ("status", "Status"),
    ("running", "Running"),
    ("rows", "Rows"),
    ("last_success_at", "Last sync"),
    ("next_run", "Next run"),
    ("last_error", "Last error"),
]


def _flat(entry: dict[str, Any]) -> dict[str, Any]:
    state = entry.get("sync") or {}
    return {
        **entry,
        "status": state.get("status", "never"),
        "rows": state.get("rows"),
        "last_success_at": state.get("last_success_at"),
    }


def register_table(args: argparse.Namespace) -> int:
    body = {"id": args.name, **spec_body(args)}
    params = {
        "dry_run": "true" if args.dry_run else "false",
        "sync": "false" if args.no_sync else "true",
    }
    result = client_for(args).request("POST", "/api/admin/register-table", json=body, params=params)
    columns = ", ".join(f"{c['name']} {c['type']}" for c in result["columns"])
    if result["dry_run"]:
        message = f"Valid (nothing stored). Columns: {columns}"
    else:
        started = " A first sync has started." if result.get("initial_sync") else ""
        message = f"Registered '{result['table']['id']}'.{started} Columns: {columns}"
    emit(result, as_json=args.json, message=message)
    return exit_codes.OK


def list_tables(args: argparse.Namespace) -> int:
    data = client_for(args).get("/api/admin/registry")
    emit(data, as_json=args.json, rows=[_flat(t) for t in data["tables"]], columns=TABLE_COLUMNS)
    return exit_codes.OK


def update_table(args: argparse.Namespace) -> int:
    body = spec_body(args)
    if not body:
        raise argparse.ArgumentTypeError("update-table needs at least one flag to change")
    result = client_for(args).request("PUT", f"/api/admin/registry/{segment(args.name)}", json=body)
    synced = (
        " A sync applying it has started (the table serves the last sync's data until it ends)."
        if result.get("resync")
        else ""
    )
    emit(
        result,
        as_json=args.json,
        message=f"Updated '{args.name}': {', '.join(sorted(body))}.{synced}",
    )
    return exit_codes.OK


def unregister_table(args: argparse.Namespace) -> int:
    result = client_for(args).delete(f"/api/admin/registry/{segment(args.name)}")
    emit(
        result, as_json=args.json, message=f"Unregistered '{result['deleted']}'; its data is gone."
    )
    return exit_codes.OK


def sync(args: argparse.Namespace) -> int:
    body = {"table_id": args.table, "wait": not args.no_wait}
    result = client_for(args).post("/api/sync/trigger", body)
    if result["queued"]:
        emit(result, as_json=args.json, message=f"Queued: {', '.join(result['queued'])}.")
        return exit_codes.OK
    rows = [{**r, "message": (r.get("error") or {}).get("message")} for r in result["results"]]
    emit(result, as_json=args.json, rows=rows, columns=RESULT_COLUMNS)
    if not args.json:  # what a sync says besides its counts: a file left out, a type widened
        for r in result["results"]:
            for note in r.get("notes") or []:
                print_message(f"note: {r['table_id']}: {note}")
    failed = any(r["status"] != "ok" for r in result["results"])
    return exit_codes.FAILURE if failed else exit_codes.OK


def sync_status(args: argparse.Namespace) -> int:
    data = client_for(args).get("/api/sync/status")
    emit(data, as_json=args.json, rows=data["tables"], columns=STATUS_COLUMNS)
    if not args.json:
        for c in data.get("conflicts", []):
            print_message(
                f"conflict: '{c['table']}' is served from {c['kept_source']}; "
                f"{c['dropped_source']} offers it too and is left out"
            )
        for problem in data.get("problems", []):
            print_message(f"problem: {problem}")
    return exit_codes.OK


# The most runs the server returns at once (GET /api/sync/history caps its limit).


def sync_history(args: argparse.Namespace) -> int:
    data = client_for(args).get("/api/sync/history", table=args.table, limit=args.limit)
    shown = len(data["runs"])
    # As many runs as the limit allows: older ones may exist that were not sent.
    data["limit"] = args.limit
    data["may_have_more"] = shown > 0 and shown >= min(args.limit, HISTORY_MAX)
    columns = [
        ("id", "Run"),
        ("table_id", "Table"),
        ("trigger", "Trigger"),
        ("status", "Status"),
        ("started_at", "Started"),
        ("duration_ms", "ms"),
        ("attempts", "Attempts"),
        ("rows", "Rows"),
        ("error", "Error"),
    ]
    more = None
    if data["may_have_more"]:
        more = (
            f"These are the newest {counted(shown, 'run')} (--limit {args.limit:,}); there may "
            f"be older ones: raise --limit (up to {HISTORY_MAX:,}) or name a TABLE."
        )
    if args.table and not shown:  # "(none)" alone: a misspelt name looks like a quiet table
        more = (
            f"No sync runs of '{args.table}': it has never synced, or is no table of this "
            "server (agnes admin list-tables lists the registered ones)."
        )
    # what a run said besides its counts (a file left out, a type widened), then the rest
    notes = [
        f"note: run {run['id']} ({run['table_id']}): {run['notes']}"
        for run in data["runs"]
        if run.get("notes")
    ]
    said = "\n".join([*notes, *([more] if more else [])]) or None
    emit(data, as_json=args.json, rows=data["runs"], columns=columns, message=said)
    return exit_codes.OK


def list_sources(args: argparse.Namespace) -> int:
    data = client_for(args).get("/api/admin/sources")
    columns = [
        ("name", "Source"),
        ("connector", "Connector"),
        ("capabilities", "Can do"),
        ("description", "Description"),
    ]
    emit(data, as_json=args.json, rows=data["sources"], columns=columns)
    return exit_codes.OK


def source_tables(args: argparse.Namespace) -> int:
    data = client_for(args).get(f"/api/admin/sources/{segment(args.source)}/tables")
    columns = [
        ("source_table", "Source table"),
        ("bucket", "Bucket"),
        ("suggested_id", "Suggested name"),
    ]
    emit(data, as_json=args.json, rows=data["tables"], columns=columns)
    return exit_codes.OK
