"""Building an API client from a command's ``--server-url``/``--token`` flags."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from agnes_sync.credentials import resolve
from agnes_sync.server_api import ServerApi


def segment(value: str) -> str:
    """``value`` as one URL path segment: '/', '?', '#' and dot-segments cannot escape it.
    An empty one is refused: the path would name the collection instead (``DELETE
    /api/admin/grants/`` answered a redirect, and the command fell over it)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(
            "an id or name given is empty: pass the one to act on (the list command shows them)"
        )
    quoted = quote(value, safe="@")
    return quoted.replace(".", "%2E") if set(value) <= {"."} else quoted


def client_for(args: argparse.Namespace) -> ServerApi:
    credentials = resolve(args.server_url, args.token, workspace=getattr(args, "workspace", None))
    return ServerApi(credentials.server_url, credentials.token, agent="agnes-cli")
