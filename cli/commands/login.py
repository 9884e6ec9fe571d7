"""``agnes login``: check a token against a server and store both for later commands."""

from __future__ import annotations

import argparse

from agnes_sync.server_api import ServerApi
from cli import exit_codes
from cli.credentials import credentials_path, resolve, write_file
from cli.output import emit


def run(args: argparse.Namespace) -> int:
    credentials = resolve(args.server_url, args.token)
    if not credentials.token:
        raise argparse.ArgumentTypeError("agnes login needs --token (or AGNES_TOKEN)")
    api = ServerApi(credentials.server_url, credentials.token, agent="agnes-cli")
    me = api.get("/api/whoami")  # the token works before it is stored
    path = write_file(credentials.server_url, credentials.token)
    emit(
        {"server_url": credentials.server_url, "user": me, "credentials": str(path)},
        as_json=args.json,
        message=f"Logged in to {credentials.server_url} as {me['email']}; "
        f"credentials saved to {credentials_path()} (mode 0600).",
    )
    return exit_codes.OK
