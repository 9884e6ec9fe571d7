"""``agnes whoami``."""

from __future__ import annotations

import argparse

from cli import exit_codes
from cli.commands.session import client_for
from cli.output import emit


def run(args: argparse.Namespace) -> int:
    me = client_for(args).get("/api/whoami")
    admin = " (admin)" if me["is_admin"] else ""
    emit(
        me,
        as_json=args.json,
        message=f"{me['email']}{admin}\ngroups: {', '.join(me['groups'])}\n"
        f"scopes: {', '.join(me['scopes'])}",
    )
    return exit_codes.OK
