"""Argument parsers of the plugin marketplace commands: ``agnes marketplace ...`` (an
analyst's own feed) and ``agnes admin marketplace ...`` (argparse only, so ``--help``
stays fast)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cli.analyst_parsers import Leaf, given, workspace_flags

if TYPE_CHECKING:
    from cli.analyst_parsers import Subparsers


def add_marketplace_commands(
    commands: Subparsers, leaf: Leaf, client: Sequence[argparse.ArgumentParser]
) -> None:
    here = [*client, workspace_flags()]
    handlers = "cli.commands.marketplace"
    group = commands.add_parser("marketplace", help="the Claude Code plugins you are granted")
    actions = group.add_subparsers(title="marketplace commands", metavar="ACTION", required=True)
    leaf(
        actions,
        "info",
        f"{handlers}:info",
        "the plugins your groups are granted and the marketplace's addresses",
        here,
    )
    refresh = leaf(
        actions,
        "refresh",
        f"{handlers}:refresh",
        "fetch the marketplace again so Claude Code sees your current plugins",
        here,
    )
    refresh.add_argument(
        "--quiet", action="store_true", help="print nothing unless something fails"
    )


def add_admin_marketplace(
    area: Subparsers, leaf: Leaf, client: Sequence[argparse.ArgumentParser]
) -> None:
    handlers = "cli.commands.admin_marketplace"
    actions = area.add_parser(
        "marketplace", help="Claude Code plugin marketplaces (git repositories)"
    ).add_subparsers(title="marketplace commands", metavar="ACTION", required=True)
    add = leaf(actions, "add", f"{handlers}:add", "register a marketplace repository", client)
    add.add_argument("slug", help="short id (lowercase, digits, '-'); plugins are SLUG/PLUGIN")
    add.add_argument("url", help="https:// clone URL, without credentials")
    add.add_argument("--ref", help="branch, tag or full commit SHA (default: its default branch)")
    add.add_argument(
        "--token-env",
        metavar="NAME",
        help="server environment variable holding a read token (its NAME, never the token)",
    )
    add.add_argument("--name", help="display name (default: the slug)")
    add.add_argument(
        "--username",
        metavar="USER",
        help="user name git sends with the token (default x-access-token)",
    )
    add.add_argument("--no-sync", action="store_true", help="do not queue a first sync")
    leaf(actions, "list", f"{handlers}:list_", "marketplaces and how their syncs went", client)
    sync = leaf(actions, "sync", f"{handlers}:sync", "sync one marketplace (or all) now", client)
    sync.add_argument(
        "slug",
        nargs="?",
        type=given("a marketplace", optional=True),
        help="marketplace to sync (default: all)",
    )
    sync.add_argument("--no-wait", action="store_true", help="queue the sync and return at once")
    remove = leaf(
        actions,
        "remove",
        f"{handlers}:remove",
        "remove a marketplace, its plugins and their grants",
        client,
    )
    remove.add_argument("slug")
    plugins = leaf(
        actions,
        "plugins",
        f"{handlers}:plugins",
        "plugins of one marketplace (or all) and the groups granted each",
        client,
    )
    plugins.add_argument(
        "slug",
        nargs="?",
        type=given("a marketplace", optional=True),
        help="marketplace (default: all)",
    )
