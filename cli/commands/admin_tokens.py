"""``agnes admin token ...``."""

from __future__ import annotations

import argparse

from cli import exit_codes
from cli.commands.session import client_for, segment
from cli.output import emit

COLUMNS = [
    ("id", "ID"),
    ("user_email", "User"),
    ("name", "Name"),
    ("prefix", "Prefix"),
    ("scopes", "Scopes"),
    ("created_at", "Created"),
    ("expires_at", "Expires"),
    ("last_used_at", "Last used"),
    ("revoked_at", "Revoked"),
]


def create(args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "user": args.user,
        "scopes": args.scope or ["data"],
        "expires_in_days": args.expires_days,
    }
    created = client_for(args).post("/api/tokens", body)
    info = created["info"]
    emit(
        created,
        as_json=args.json,
        message=(
            f"Token for {info['user_email']} ({', '.join(info['scopes'])}):\n\n"
            f"    {created['token']}\n\nIt is shown only once: store it now."
        ),
    )
    return exit_codes.OK


def list_(args: argparse.Namespace) -> int:
    data = client_for(args).get("/api/tokens", user=args.user, all=args.all or None)
    emit(data, as_json=args.json, rows=data["tokens"], columns=COLUMNS)
    return exit_codes.OK


def revoke(args: argparse.Namespace) -> int:
    info = client_for(args).delete(f"/api/tokens/{segment(args.token_id)}")
    label = f"Token {info['id']} ({info['name']})"
    if info.get("already_revoked"):
        message = f"{label} was already revoked ({info['revoked_at']}); nothing changed."
    else:
        message = f"{label} revoked."
    emit(info, as_json=args.json, message=message)
    return exit_codes.OK
