"""``agnes admin marketplace ...``: Claude Code plugin marketplaces (git repositories the
server syncs) and their plugins.

``sync`` waits by default: it asks the server to queue the syncs (the server never syncs
on a request), then reads each marketplace until it is idle again with a new
``last_sync_at``, and prints how each went (exit 1 when one failed).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from agnes_sync.server_api import ServerApi
from cli import exit_codes
from cli.commands.session import client_for, segment
from cli.output import counted, emit

BASE = "/api/admin/marketplaces"
POLL_FIRST_SECONDS = 0.1
POLL_MAX_SECONDS = 1.0
LIST_COLUMNS = [
    ("slug", "Slug"),
    ("name", "Name"),
    ("url", "URL"),
    ("ref", "Ref"),
    ("state", "State"),
    ("last_sync_at", "Last sync"),
    ("last_sync_outcome", "Outcome"),
    ("serving", "Serving"),
    ("plugins", "Plugins"),
    ("token", "Token env"),
    ("last_sync_error", "Error"),
]
SYNC_COLUMNS = [
    ("slug", "Slug"),
    ("last_sync_outcome", "Outcome"),
    ("last_sync_at", "Finished"),
    ("serving", "Serving"),
    ("plugins", "Plugins"),
    ("last_sync_error", "Error"),
]
PLUGIN_COLUMNS = [
    ("marketplace", "Marketplace"),
    ("plugin", "Plugin"),
    ("version", "Version"),
    ("grant_id", "Grant id"),
    ("groups", "Granted to"),
    ("description", "Description"),
]


def _shown(marketplace: dict[str, Any]) -> dict[str, Any]:
    """A marketplace as a table row: the served commit short, the token variable's state."""
    commit = marketplace.get("good_commit")
    token_env = marketplace.get("token_env")
    token = None
    if token_env:
        token = f"{token_env} ({'set' if marketplace.get('token_env_set') else 'NOT SET'})"
    return {**marketplace, "serving": commit[:12] if commit else None, "token": token}


def add(args: argparse.Namespace) -> int:
    body = {
        "slug": args.slug,
        "url": args.url,
        "name": args.name,
        "ref": args.ref,
        "token_env": args.token_env,
        "username": args.username,
        "sync": not args.no_sync,
    }
    added = client_for(args).post(BASE, {k: v for k, v in body.items() if v is not None})
    slug = added["slug"]
    lines = [f"Added marketplace '{slug}' ({added['url']})."]
    if args.no_sync:
        lines.append(f"Sync it when ready: agnes admin marketplace sync {slug}")
    else:
        lines.append(f"Its first sync is queued; wait for it: agnes admin marketplace sync {slug}")
    if added.get("token_env") and not added.get("token_env_set"):
        lines.append(
            f"note: {added['token_env']} is not set in the server's environment: the sync "
            "cannot authenticate until it is (then restart the server)."
        )
    emit(added, as_json=args.json, message="\n".join(lines))
    return exit_codes.OK


def list_(args: argparse.Namespace) -> int:
    data = client_for(args).get(BASE)
    rows = [_shown(m) for m in data["marketplaces"]]
    emit(data, as_json=args.json, rows=rows, columns=LIST_COLUMNS)
    return exit_codes.OK


def sync(args: argparse.Namespace) -> int:
    api = client_for(args)
    if args.slug:
        one = api.get(f"{BASE}/{segment(args.slug)}")
        before = {one["slug"]: one["last_sync_at"]}
        queued = api.post(f"{BASE}/{segment(one['slug'])}/sync")["queued"]
    else:
        before = {m["slug"]: m["last_sync_at"] for m in api.get(BASE)["marketplaces"]}
        queued = api.post(f"{BASE}/sync")["queued"]
    if not queued:
        emit({"queued": []}, as_json=args.json, message="No marketplaces are registered.")
        return exit_codes.OK
    if args.no_wait:
        emit({"queued": queued}, as_json=args.json, message=f"Queued: {', '.join(queued)}.")
        return exit_codes.OK
    if not args.json:
        sys.stderr.write(f"Syncing {', '.join(queued)} (Ctrl-C stops waiting, not the sync)...\n")
    done = _wait(api, queued, before)
    emit(
        {"marketplaces": done},
        as_json=args.json,
        rows=[_shown(m) for m in done],
        columns=SYNC_COLUMNS,
    )
    failed = [m["slug"] for m in done if m["last_sync_outcome"] != "ok"]
    return exit_codes.FAILURE if failed else exit_codes.OK


def _wait(api: ServerApi, slugs: list[str], before: dict[str, Any]) -> list[dict[str, Any]]:
    """Each marketplace once its sync has finished: idle, with a ``last_sync_at`` other
    than before the request."""
    pending, done = list(slugs), {}
    interval = POLL_FIRST_SECONDS
    while True:
        for slug in list(pending):
            now = api.get(f"{BASE}/{segment(slug)}")
            if now["state"] == "idle" and now["last_sync_at"] != before.get(slug):
                done[slug] = now
                pending.remove(slug)
        if not pending:
            return [done[slug] for slug in slugs]
        time.sleep(interval)
        interval = min(interval * 2, POLL_MAX_SECONDS)


def remove(args: argparse.Namespace) -> int:
    removed = client_for(args).delete(f"{BASE}/{segment(args.slug)}")
    emit(
        removed,
        as_json=args.json,
        message=(
            f"Removed marketplace '{removed['deleted']}': {counted(removed['plugins'], 'plugin')} "
            f"no longer served, {counted(removed['grants'], 'grant')} removed with them."
        ),
    )
    return exit_codes.OK


def plugins(args: argparse.Namespace) -> int:
    path = f"{BASE}/{segment(args.slug)}/plugins" if args.slug else f"{BASE}/plugins"
    data = client_for(args).get(path)
    emit(data, as_json=args.json, rows=data["plugins"], columns=PLUGIN_COLUMNS)
    if not args.json and data["plugins"]:
        sys.stdout.write(
            "Grant one to a group: agnes admin grant create GROUP marketplace_plugin GRANT_ID\n"
        )
    return exit_codes.OK
