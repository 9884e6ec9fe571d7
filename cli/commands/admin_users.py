"""``agnes admin user ...``."""

from __future__ import annotations

import argparse
from typing import Any

from cli import exit_codes
from cli.commands.session import client_for, segment
from cli.output import emit

COLUMNS = [
    ("id", "ID"),
    ("email", "E-mail"),
    ("name", "Name"),
    ("active", "Active"),
    ("last_seen_at", "Last seen"),
    ("groups", "Groups"),
    ("created_at", "Created"),
    ("last_pull_at", "Last pull"),
]


def _rows(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The users as the table shows them: a user never seen is seen 'never', as in the
    admin app (the JSON keeps null)."""
    return [{**user, "last_seen_at": user.get("last_seen_at") or "never"} for user in users]


def add(args: argparse.Namespace) -> int:
    body = {"email": args.email, "name": args.name, "groups": args.group}
    user = client_for(args).post("/api/admin/users", body)
    emit(user, as_json=args.json, rows=_rows([user]), columns=COLUMNS, message="User added.")
    return exit_codes.OK


def list_(args: argparse.Namespace) -> int:
    data = client_for(args).get("/api/admin/users")
    emit(data, as_json=args.json, rows=_rows(data["users"]), columns=COLUMNS)
    return exit_codes.OK


def _set_active(args: argparse.Namespace, action: str) -> int:
    user = client_for(args).post(f"/api/admin/users/{segment(args.user)}/{action}")
    emit(user, as_json=args.json, rows=_rows([user]), columns=COLUMNS)
    return exit_codes.OK


def deactivate(args: argparse.Namespace) -> int:
    return _set_active(args, "deactivate")


def activate(args: argparse.Namespace) -> int:
    return _set_active(args, "activate")
