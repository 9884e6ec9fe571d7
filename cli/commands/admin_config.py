"""``agnes admin server-config [--set CAP=VALUE ...] [--reset CAP ...]``."""

from __future__ import annotations

import argparse
from typing import Any

from cli import exit_codes
from cli.commands.session import client_for
from cli.output import emit


def run(args: argparse.Namespace) -> int:
    client = client_for(args)
    changes: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--set needs CAP=VALUE, got '{item}'")
        changes[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    for key in args.reset:
        changes[key.strip()] = None
    if changes:
        data = client.request("PUT", "/api/admin/server-config", json={"scan_caps": changes})
    else:
        data = client.get("/api/admin/server-config")
    rows = [
        {"cap": k, "value": v, "overridden": k in data["overrides"]}
        for k, v in data["scan_caps"].items()
    ]
    emit(
        data,
        as_json=args.json,
        rows=rows,
        columns=[("cap", "Cap"), ("value", "Value"), ("overridden", "Changed")],
    )
    return exit_codes.OK
