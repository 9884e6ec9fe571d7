"""``agnes snapshot``: fetch a filtered subset of a remote table into the workspace."""

from __future__ import annotations

import argparse

from cli import exit_codes
from cli.output import emit
from cli.workspace_session import open_backend

COLUMNS = [
    ("name", "snapshot"),
    ("table_id", "from"),
    ("rows", "rows"),
    ("bytes", "bytes"),
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
    with open_backend(args) as backend:
        if args.estimate:
            estimate = backend.snapshot_estimate(spec)
            emit(
                estimate.model_dump(mode="json"),
                as_json=args.json,
                message=f"{estimate.table_id}: would scan {estimate.estimated_scan_bytes:,} bytes "
                f"(cap {estimate.limit_bytes:,}; budget left {estimate.remaining_budget_bytes:,}), "
                f"about {estimate.estimated_result_rows} rows; fits: {estimate.fits_cap}\n"
                f"{estimate.sql}",
            )
            return exit_codes.OK
        if not args.name:
            raise argparse.ArgumentTypeError("snapshot create needs --as NAME (or --estimate)")
        ttl = int(args.ttl * 3600) if args.ttl else None
        info = backend.snapshot_create(spec, args.name, ttl)
        emit(
            info.model_dump(mode="json"),
            as_json=args.json,
            message=f"Snapshot {info.name}: {info.rows} rows from {info.table_id} "
            f"({info.bytes_scanned:,} bytes scanned). Query it as {info.name}.",
        )
        return exit_codes.OK


def list_(args: argparse.Namespace) -> int:
    with open_backend(args) as backend:
        rows = [s.model_dump(mode="json") for s in backend.snapshot_list()]
        emit({"snapshots": rows}, as_json=args.json, rows=rows, columns=COLUMNS)
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
            message=f"Refreshed {info.name}: {info.rows} rows "
            f"({info.bytes_scanned:,} bytes scanned).",
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
            message=f"Dropped {len(dropped)} expired snapshots"
            + (": " + ", ".join(d["name"] for d in dropped) if dropped else "."),
        )
        return exit_codes.OK
