"""``agnes admin metrics import|export|delete``: metric definitions as YAML files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli import exit_codes
from cli.commands.session import client_for, segment
from cli.output import counted, emit


def import_(args: argparse.Namespace) -> int:
    from agnes_mcp.metrics.loader import read_directory

    root = Path(args.directory)
    if not root.is_dir():
        raise argparse.ArgumentTypeError(f"{root} is not a directory")
    files = read_directory(root)
    if not files:
        raise argparse.ArgumentTypeError(f"{root} holds no .yml or .yaml files")
    api = client_for(args)
    answer = api.post(
        "/api/admin/metrics/import",
        {"files": files, "replace": args.replace, "dry_run": args.dry_run},
    )
    verb = "Would import" if answer["dry_run"] else "Imported"
    emit(
        answer,
        as_json=args.json,
        message=f"{verb} {counted(len(answer['imported']), 'metric')} from "
        f"{counted(len(files), 'file')}"
        + (f"; removed {answer['removed']}" if answer["removed"] else "")
        + ": "
        + ", ".join(answer["imported"]),
    )
    return exit_codes.OK


def export(args: argparse.Namespace) -> int:
    api = client_for(args)
    response = api.request_text("GET", "/api/admin/metrics/export")
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)  # as `agnes notebook export -o`
        output.write_text(response, encoding="utf-8")
        emit({"written": str(output)}, as_json=args.json, message=f"Wrote {args.output}.")
    elif args.json:  # the YAML document itself was printed: --json gave no JSON
        import yaml

        emit(yaml.safe_load(response) or {"metrics": []}, as_json=True)
    else:
        sys.stdout.write(response)
    return exit_codes.OK


def delete(args: argparse.Namespace) -> int:
    category, _, name = args.id.partition("/")
    if not category.strip() or not name.strip():
        raise argparse.ArgumentTypeError(
            f"a metric id is category/name (e.g. revenue/mrr), not '{args.id}'"
        )
    api = client_for(args)
    answer = api.delete(f"/api/admin/metrics/{segment(category)}/{segment(name)}")
    emit(answer, as_json=args.json, message=f"Deleted {args.id}.")
    return exit_codes.OK
