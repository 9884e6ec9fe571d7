"""``agnes admin oauth ...``: MCP clients' OAuth grants (one per consent)."""

from __future__ import annotations

import argparse

from cli import exit_codes
from cli.commands.session import client_for, segment
from cli.output import emit

GRANTS = "/api/admin/oauth-grants"
COLUMNS = [
    ("id", "ID"),
    ("user_email", "User"),
    ("client_name", "Client"),
    ("created_at", "Created"),
    ("last_used_at", "Last used"),
    ("status", "Status"),
    ("revoked_at", "Revoked"),
]


def list_(args: argparse.Namespace) -> int:
    data = client_for(args).get(GRANTS, user=args.user, active=args.active or None)
    emit(data, as_json=args.json, rows=data["grants"], columns=COLUMNS)
    return exit_codes.OK


def revoke(args: argparse.Namespace) -> int:
    grant = client_for(args).delete(f"{GRANTS}/{segment(args.grant_id)}")
    label = (
        f"OAuth grant {grant['id']} ({grant['client_name']} for "
        f"{grant['user_email'] or grant['user_id']})"
    )
    if grant.get("already_revoked"):
        message = f"{label} was already revoked ({grant['revoked_at']}); nothing changed."
    else:
        message = f"{label} revoked: the client is signed out."
    emit(grant, as_json=args.json, message=message)
    return exit_codes.OK
