"""``agnes whoami``: the user the token belongs to, and which credentials were used."""

from __future__ import annotations

import argparse
from contextlib import closing

from agnes_sync.credentials import resolve
from agnes_sync.server_api import ServerApi
from cli import exit_codes
from cli.output import emit
from cli.workspace_session import named_workspace


def run(args: argparse.Namespace) -> int:
    credentials = resolve(args.server_url, args.token, workspace=named_workspace(args))
    with closing(ServerApi(credentials.server_url, credentials.token, agent="agnes-cli")) as api:
        me = api.whoami()
    admin = " (admin)" if me["is_admin"] else ""
    used = (
        f"server: {credentials.server_url} ({credentials.server_url_from})\n"
        f"token: {credentials.token_from or 'none'}"
    )
    if credentials.workspace is not None:
        used += f"\nworkspace: {credentials.workspace}"
        if (credentials.token_from or "").startswith("user default"):
            used += " (no entry of its own: it uses your default; 'agnes init' here binds it)"
    emit(
        {**me, "credentials": credentials.describe()},
        as_json=args.json,
        message=f"{me['email']}{admin}\ngroups: {', '.join(me['groups'])}\n"
        f"scopes: {', '.join(me['scopes'])}\n{used}",
    )
    return exit_codes.OK
