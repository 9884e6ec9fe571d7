"""``agnes login``: check a token against a server and store both for later commands.

Outside any workspace it sets the user's default. Inside a workspace it would change the
user that workspace (and its Claude Code hooks) acts as, so it asks which is meant:
``--workspace W`` changes that workspace's entry, ``--global`` the user's default.
"""

from __future__ import annotations

import argparse
from contextlib import closing

from agnes_sync.credentials import (
    read_workspace_entry,
    resolve,
    workspace_root,
    write_file,
    write_workspace_entry,
)
from agnes_sync.server_api import ServerApi
from cli import exit_codes
from cli.output import emit
from cli.workspace_session import named_workspace


def run(args: argparse.Namespace) -> int:
    here = workspace_root(None)  # the workspace the command runs in, if any
    if args.workspace:
        target = named_workspace(args)  # a workspace (not any folder, nor a typo)
    elif args.as_default:
        target = None
    elif here is not None:
        raise argparse.ArgumentTypeError(
            f"You are in the workspace {here}: 'agnes login' would change the user it acts "
            f"as. Pass --workspace {here} to change this workspace's credentials, or --global "
            "to set your default (used outside workspaces)."
        )
    else:
        target = None
    credentials = resolve(args.server_url, args.token, workspace=target, outside=target is None)
    if not credentials.token:
        raise argparse.ArgumentTypeError("agnes login needs --token (or AGNES_TOKEN)")
    with closing(ServerApi(credentials.server_url, credentials.token, agent="agnes-cli")) as api:
        me = api.whoami()  # the token works before it is stored
    url, email = credentials.server_url, me["email"]
    if target is None:
        path = write_file(url, credentials.token)
        message = (
            f"Logged in to {url} as {email}; saved as your default in {path} (mode 0600), "
            "used outside workspaces. Workspaces keep their own credentials."
        )
        if here is not None:
            entry = read_workspace_entry(here)
            if entry:
                message += f"\nThis workspace ({here}) still acts as {entry.get('user', '?')}."
    else:
        before = read_workspace_entry(target)
        path = write_workspace_entry(target, url, credentials.token, email)
        was = ""
        if before and (before.get("token"), before.get("server_url")) != (credentials.token, url):
            was = f" (was {before.get('user') or 'another token'} on {before.get('server_url')})"
        message = (
            f"Workspace {target} now acts as {email} on {url}{was}; saved to {path} "
            "(mode 0600). Your default outside workspaces is unchanged."
        )
    emit(
        {
            "server_url": url,
            "user": me,
            "credentials": str(path),
            "workspace": str(target) if target else None,
        },
        as_json=args.json,
        message=message,
    )
    return exit_codes.OK
