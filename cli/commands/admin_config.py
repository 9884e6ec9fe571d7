"""``agnes admin server-config [--set CAP=VALUE ...] [--reset CAP ...]
[--instructions-file PATH | --reset-instructions]``."""

from __future__ import annotations

import argparse
from typing import Any

from agnes_sync.server_api import ServerApi, ServerError
from cli import exit_codes
from cli.commands.session import client_for
from cli.failures import read_text_file
from cli.output import counted, emit, size


def run(args: argparse.Namespace) -> int:
    client = client_for(args)
    changes: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--set needs CAP=VALUE, got '{item}'")
        changes[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    both = sorted(set(changes) & {key.strip() for key in args.reset})
    if both:  # the reset would silently undo the --set (or the other way round)
        raise argparse.ArgumentTypeError(
            f"--set and --reset both name {', '.join(both)}: give one of them for each cap"
        )
    for key in args.reset:
        changes[key.strip()] = None
    body: dict[str, Any] = {"scan_caps": changes} if changes else {}
    if args.instructions_file:
        # a missing or unusable file is reported as every file a command is given is
        # (its name, the system's words and what to check); it printed Python's
        # "[Errno 2] No such file or directory: '...'" and "See --help."
        body["agent_instructions"] = read_text_file(args.instructions_file)
        if not body["agent_instructions"].strip():
            raise argparse.ArgumentTypeError(
                "--instructions-file is empty (use --reset-instructions for the built-in text)"
            )
    elif args.reset_instructions:
        body["agent_instructions"] = ""
    if body:
        try:
            data = client.request("PUT", "/api/admin/server-config", json=body)
        except ServerError as exc:
            if not args.json:
                _hint_caps(client, exc)
            raise
    else:
        data = client.get("/api/admin/server-config")
    rows = [
        {  # sizes for people, as every listing gives them (JSON keeps the bytes)
            "cap": k,
            "value": size(v) if k.endswith("_bytes") else v,
            "overridden": k in data["overrides"],
        }
        for k, v in data["scan_caps"].items()
    ]
    rows.append(
        {
            "cap": "agent_instructions",
            "value": counted(len(data["agent_instructions"]), "character"),
            "overridden": data["agent_instructions_custom"],
        }
    )
    emit(
        data,
        as_json=args.json,
        rows=rows,
        columns=[("cap", "Cap"), ("value", "Value"), ("overridden", "Changed")],
    )
    return exit_codes.OK


def _hint_caps(client: ServerApi, refused: ServerError) -> None:
    """A refused ``--set``/``--reset`` told to see the API's request schema; it now says
    what the command takes: the caps this server has (and the one meant, for a misspelt
    name), and how a value is written."""
    import difflib

    fields = refused.details.get("fields")
    named = (
        [
            str(f.get("field", "")).removeprefix("scan_caps.")
            for f in fields
            if isinstance(f, dict) and str(f.get("field", "")).startswith("scan_caps.")
        ]
        if refused.code == "invalid_request" and isinstance(fields, list)
        else []
    )
    if not named:
        return
    try:
        caps = list(client.get("/api/admin/server-config")["scan_caps"])
    except Exception:  # noqa: BLE001 - only a better hint was at stake
        return
    meant = [
        close[0]
        for name in named
        if name not in caps and (close := difflib.get_close_matches(name, caps, n=1))
    ]
    refused.hint = (
        (f"Did you mean {', '.join(meant)}? " if meant else "")
        + f"The caps: {', '.join(caps)}. Write sizes like 5GiB or 500MB and counts as "
        "whole numbers (--set CAP=VALUE, --reset CAP); nothing was changed."
    )
