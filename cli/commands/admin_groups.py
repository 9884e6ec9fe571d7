"""``agnes admin group ...``."""

from __future__ import annotations

import argparse
from typing import Any

from cli import exit_codes
from cli.commands.session import client_for, segment
from cli.output import emit

GROUP_COLUMNS = [
    ("id", "ID"),
    ("name", "Name"),
    ("description", "Description"),
    ("is_system", "Built in"),
    ("member_count", "Members"),
]
MEMBER_COLUMNS = [
    ("email", "E-mail"),
    ("user_id", "User ID"),
    ("source", "Source"),
    ("added_at", "Added"),
]


def _path(group: str) -> str:
    return f"/api/admin/groups/{segment(group)}"


def _members(args: argparse.Namespace, data: dict[str, Any]) -> int:
    emit(
        data,
        as_json=args.json,
        rows=data["members"],
        columns=MEMBER_COLUMNS,
        title=f"Members of {data['group']['name']}",
    )
    return exit_codes.OK


def list_(args: argparse.Namespace) -> int:
    data = client_for(args).get("/api/admin/groups")
    emit(data, as_json=args.json, rows=data["groups"], columns=GROUP_COLUMNS)
    return exit_codes.OK


def create(args: argparse.Namespace) -> int:
    group = client_for(args).post(
        "/api/admin/groups", {"name": args.name, "description": args.description}
    )
    emit(group, as_json=args.json, rows=[group], columns=GROUP_COLUMNS, message="Group created.")
    return exit_codes.OK


def delete(args: argparse.Namespace) -> int:
    data = client_for(args).delete(_path(args.group))
    gone = data["deleted"]  # the group's id: say it by the name given too
    named = args.group if args.group == gone else f"{args.group} ({gone})"
    emit(data, as_json=args.json, message=f"Group {named} deleted.")
    return exit_codes.OK


def members(args: argparse.Namespace) -> int:
    return _members(args, client_for(args).get(_path(args.group) + "/members"))


def add_member(args: argparse.Namespace) -> int:
    return _members(
        args, client_for(args).post(_path(args.group) + "/members", {"user": args.user})
    )


def remove_member(args: argparse.Namespace) -> int:
    user = segment(args.user)
    return _members(args, client_for(args).delete(_path(args.group) + f"/members/{user}"))
