"""``agnes snapshot``: fetch a filtered subset of a remote table into the workspace."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cli import exit_codes
from cli.output import counted, emit, size
from cli.workspace_session import open_backend

if TYPE_CHECKING:
    from agnes_mcp.mcp_server.tool_models import SnapshotInfo
    from agnes_mcp.rails.snapshot_spec import SnapshotEstimate

COLUMNS = [
    ("name", "snapshot"),
    ("table_id", "from"),
    ("rows", "rows"),
    ("size", "size"),
    ("truncated", "cut"),
    ("created_at", "taken"),
    ("expires_at", "expires"),
    ("where", "where"),
]


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def create(args: argparse.Namespace) -> int:
    from agnes_mcp.rails.snapshot_spec import SnapshotSpec

    spec = SnapshotSpec(
        table_id=args.table,
        select=_list(args.select),
        where=args.where,
        limit=args.limit,
        order_by=_list(args.order_by),
    )
    if args.estimate and (args.name or args.ttl):
        # an estimate takes nothing: a name or lifetime given with it was ignored
        given = " and ".join(f for f, v in (("--as", args.name), ("--ttl", args.ttl)) if v)
        raise argparse.ArgumentTypeError(
            f"--estimate only says what the snapshot would scan and takes nothing, so {given} "
            "would do nothing: drop --estimate to take it, or drop them to estimate"
        )
    with open_backend(args) as backend:
        if args.estimate:
            estimate = backend.snapshot_estimate(spec)
            emit(
                estimate.model_dump(mode="json"),
                as_json=args.json,
                message=_estimate_text(estimate),
            )
            return exit_codes.OK
        if not args.name:
            raise argparse.ArgumentTypeError("snapshot create needs --as NAME (or --estimate)")
        ttl = max(1, round(args.ttl * 3600)) if args.ttl else None
        info = backend.snapshot_create(spec, args.name, ttl)
        emit(
            info.model_dump(mode="json"),
            as_json=args.json,
            message=f"Snapshot {info.name}: {counted(info.rows, 'row')} ({size(info.bytes)}) from "
            f"{info.table_id} ({size(info.bytes_scanned)} scanned). Query it as "
            f"{info.name}." + _caveats(info, args.limit),
        )
        return exit_codes.OK


def _estimate_text(estimate: SnapshotEstimate) -> str:
    rows = estimate.estimated_result_rows
    text = (
        f"{estimate.table_id}: would scan {size(estimate.estimated_scan_bytes)} "
        f"(cap {size(estimate.limit_bytes)}; budget left {size(estimate.remaining_budget_bytes)}), "
        f"at most {'?' if rows is None else f'{rows:,}'} rows"
    )
    if estimate.estimated_result_bytes is not None:
        text += f" ({size(estimate.estimated_result_bytes)})"
    text += f"; fits: {'yes' if estimate.fits_cap else 'no'}"
    if estimate.blocked_by:
        text += f" (it would hit {estimate.blocked_by})"
    return f"{text}\n{estimate.sql}"


def _caveats(info: SnapshotInfo, limit: int | None = None) -> str:
    """What else to say about a snapshot: that it was cut, and its notes. Only its own
    limit cuts one (a cap refuses it instead): ``limit``, the ``--limit`` given, or the
    limit it was first taken with (``refresh``)."""
    said = ""
    if info.truncated:
        which = f"--limit {limit:,}" if limit is not None else "its own limit"
        said += (
            f"\ntruncated: it holds the first {counted(info.rows, 'row')} only: {which} cut it, "
            "and more rows match; take it again with a larger --limit, or narrow --where, for "
            "the rest."
        )
    return said + "".join(f"\nnote: {n}" for n in info.notes)


def list_(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        data = [s.model_dump(mode="json") for s in backend.snapshot_list()]
    rows = [{**s, "size": size(s["bytes"])} for s in data]
    # what a snapshot's row cannot hold (cut by its limit, a table took its name) below it
    notes = "\n".join(f"note ({s['name']}): {n}" for s in data for n in s.get("notes") or [])
    emit({"snapshots": data}, as_json=args.json, rows=rows, columns=COLUMNS, message=notes)
    return exit_codes.OK


def drop(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        info = backend.snapshot_drop(args.name)
        emit(info.model_dump(mode="json"), as_json=args.json, message=f"Dropped {info.name}.")
        return exit_codes.OK


def refresh(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        info = backend.snapshot_refresh(args.name)
        emit(
            info.model_dump(mode="json"),
            as_json=args.json,
            message=f"Refreshed {info.name}: {counted(info.rows, 'row')} ({size(info.bytes)}, "
            f"{size(info.bytes_scanned)} scanned)." + _caveats(info),
        )
        return exit_codes.OK


def prune(args: argparse.Namespace) -> int:
    if not args.expired:
        raise argparse.ArgumentTypeError("agnes snapshot prune needs --expired")
    with open_backend(args) as backend:
        dropped = [s.model_dump(mode="json") for s in backend.snapshot_prune()]
        emit(
            {"dropped": dropped},
            as_json=args.json,
            message=f"Dropped {counted(len(dropped), 'expired snapshot')}"
            + (": " + ", ".join(d["name"] for d in dropped) if dropped else "."),
        )
        return exit_codes.OK
