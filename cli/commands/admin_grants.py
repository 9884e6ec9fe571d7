"""``agnes admin grant ...``."""

from __future__ import annotations

import argparse

from cli import exit_codes
from cli.commands.session import client_for, segment
from cli.output import emit

COLUMNS = [
    ("id", "ID"),
    ("group_name", "Group"),
    ("resource_type", "Type"),
    ("resource_id", "Resource"),
    ("granted_at", "Granted"),
]


def list_(args: argparse.Namespace) -> int:
    data = client_for(args).get(
        "/api/admin/grants", group=args.group, resource_type=args.resource_type
    )
    emit(data, as_json=args.json, rows=data["grants"], columns=COLUMNS)
    return exit_codes.OK


def create(args: argparse.Namespace) -> int:
    body = {
        "group": args.group,
        "resource_type": args.resource_type,
        "resource_id": args.resource_id,
    }
    grant = client_for(args).post("/api/admin/grants", body)
    emit(grant, as_json=args.json, rows=[grant], columns=COLUMNS, message="Grant created.")
    return exit_codes.OK


def delete(args: argparse.Namespace) -> int:
    data = client_for(args).delete(f"/api/admin/grants/{segment(args.grant_id)}")
    emit(data, as_json=args.json, message=f"Grant {data['deleted']} removed.")
    return exit_codes.OK
