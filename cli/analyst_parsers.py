"""Argument parsers of the analyst's commands and ``agnes mcp`` (argparse only, no imports
of the work they do, so ``--help`` stays fast)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cli.output_flags import add_format

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

Leaf = Callable[..., argparse.ArgumentParser]
HISTORY_MAX = 1000  # runs one `agnes admin sync-history` may list (GET /api/sync/history)
MAX_SAMPLE_ROWS = 100  # agnes_mcp.catalog_models.MAX_SAMPLE_ROWS (not imported: --help stays fast)


def day(text: str) -> str:
    """An argument that must be a day, YYYY-MM-DD (argparse says so, exit 2)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a day YYYY-MM-DD ({exc})") from None


def given(what: str, optional: bool = False) -> Callable[[str], str]:
    """An argument that must say something: an empty one (a script's unset variable,
    ``agnes admin marketplace sync "$SLUG"``) is refused, not read as "all" or as no
    value (which synced every marketplace, or reached the server as a schema error)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(
                f"is empty: give {what}" + (", or leave it out" if optional else "")
            )
        return text

    return parse


def rows(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argument that must be a whole number from ``low`` (to ``high``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < low or (high is not None and value > high):
            said = f"from {low:,} to {high:,}" if high is not None else f"{low:,} or more"
            raise argparse.ArgumentTypeError(f"must be {said}, not {value:,}")
        return value

    return parse


ROWS = rows(1)
# Files `agnes pull --jobs` fetches at once at most: more only open more connections to the
# one server (and threads here) than a link is any faster for.
MAX_PULL_JOBS = 32


def port(text: str) -> int:
    """A TCP port to bind: 0 (any free one) to 65535 (refused here in these words, not in
    the settings' validation words after the command started)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 (any free) to 65535, not {value}")
    return value


MAX_TTL_HOURS = 87_840  # agnes_sync.snapshot_files.MAX_TTL_SECONDS (ten years), in hours


def hours(text: str) -> float:
    """A positive number of hours, at most a snapshot's longest lifetime (``1e308`` hours
    overflowed into a traceback on the way to seconds)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of hours") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of hours, not {text}")
    if value > MAX_TTL_HOURS:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_TTL_HOURS:,} hours (ten years), not {text}; leave --ttl "
            "out to keep it until you drop it"
        )
    return value


def workspace_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--workspace",
        type=given("a folder", optional=True),
        help="workspace folder (default: the nearest one holding .agnes/)",
    )
    return flags


def add_analyst_commands(
    commands: Subparsers,
    leaf: Leaf,
    client: Sequence[argparse.ArgumentParser],
    connection: Sequence[argparse.ArgumentParser],
) -> None:
    """The analyst's commands; ``connection``: the client's flags without ``--json``, for
    ``agnes mcp`` (stdout carries the protocol alone: no result to print as JSON)."""
    here = [*client, workspace_flags()]
    handlers = "cli.commands.analyst"
    leaf(
        commands,
        "mcp",
        "cli.commands.mcp_stdio:run",
        "serve the workspace's MCP tools on stdio (for Claude Code)",
        [*connection, workspace_flags()],
    )
    catalog = leaf(
        commands, "catalog", f"{handlers}:catalog", "tables and metrics you may use", here
    )
    catalog.add_argument("--search", help="words to look for")
    catalog.add_argument(
        "--mode", choices=["local", "materialized", "remote"], help="only this query mode"
    )
    catalog.add_argument("--metrics", action="store_true", help="list metrics instead of tables")
    catalog.add_argument(
        "--show", metavar="ID", help="show one metric's definition (category/name)"
    )
    schema = leaf(
        commands, "schema", f"{handlers}:schema", "a table's columns, types and stats", here
    )
    schema.add_argument("table")
    describe = leaf(commands, "describe", f"{handlers}:describe", "a few rows of a table", here)
    describe.add_argument("table")
    describe.add_argument(
        "-n", type=rows(1, MAX_SAMPLE_ROWS), default=5, help="rows (default 5, max 100)"
    )
    query = leaf(commands, "query", f"{handlers}:query", "run one SELECT through the rails", here)
    query.add_argument("sql", help="the SQL ('-' reads it from stdin)")
    query.add_argument(
        "--remote", action="store_true", help="run it in the warehouse (scan-capped)"
    )
    add_format(query, "csv: a cut result exits 6 and says why on stderr")
    query.add_argument(
        "--limit", type=ROWS, help="most rows (default 1000; never above the row cap)"
    )
    leaf(
        commands,
        "disk-info",
        f"{handlers}:disk_info",
        "sizes of this workspace's data and free space",
        here,
    )

    snapshot = commands.add_parser("snapshot", help="filtered local copies of remote tables")
    actions = snapshot.add_subparsers(title="snapshot commands", metavar="ACTION", required=True)
    create = leaf(actions, "create", "cli.commands.snapshot:create", "take a snapshot", here)
    create.add_argument("table", type=given("the table to take it from"))
    create.add_argument(
        "--select", required=True, type=given("columns, or *"), help="columns, comma-separated"
    )
    create.add_argument("--where", help="a predicate in the table's SQL flavor")
    create.add_argument("--limit", type=ROWS)
    create.add_argument("--order-by", help="columns, comma-separated, each optionally DESC")
    create.add_argument("--as", dest="name", type=given("a name"), help="name to query it by")
    create.add_argument("--ttl", type=hours, help="hours until it expires")
    create.add_argument("--estimate", action="store_true", help="only say what it would scan")
    leaf(actions, "list", "cli.commands.snapshot:list_", "list snapshots", here)
    drop = leaf(actions, "drop", "cli.commands.snapshot:drop", "drop a snapshot", here)
    drop.add_argument("name")
    again = leaf(actions, "refresh", "cli.commands.snapshot:refresh", "take a snapshot again", here)
    again.add_argument("name")
    prune = leaf(actions, "prune", "cli.commands.snapshot:prune", "drop expired snapshots", here)
    prune.add_argument("--expired", action="store_true", help="drop those past their TTL")

    handlers_ws = "cli.commands.workspace"
    pull = leaf(
        commands,
        "pull",
        f"{handlers_ws}:pull",
        "fetch the tables you are granted into this workspace",
        here,
    )
    pull.add_argument("--quiet", action="store_true", help="print nothing unless something fails")
    pull.add_argument(
        "--dry-run", action="store_true", help="say what would change; change nothing"
    )
    pull.add_argument(
        "--jobs",
        type=rows(1, MAX_PULL_JOBS),
        default=None,
        help=f"files fetched at once, 1 to {MAX_PULL_JOBS} (default: the number of CPU "
        "cores, at most 4)",
    )
    push = leaf(
        commands,
        "push",
        f"{handlers_ws}:push",
        "upload this workspace's session transcripts and CLAUDE.local.md",
        here,
    )
    push.add_argument("--quiet", action="store_true", help="print nothing unless something fails")
    init = leaf(
        commands,
        "init",
        f"{handlers_ws}:init",
        "make this folder a workspace, wire it to a server for Claude Code and pull",
        client,
    )
    init.add_argument(
        "--workspace",
        type=given("a folder", optional=True),
        help="folder to make a workspace (default: the workspace holding the current "
        "folder, else the current folder)",
    )
    init.add_argument("--no-pull", action="store_true", help="do not run the first pull")
    init.add_argument("--quiet", action="store_true", help="print nothing unless something fails")

    metrics = commands.add_parser("metrics", help="compute company metrics")
    metric_actions = metrics.add_subparsers(
        title="metrics commands", metavar="ACTION", required=True
    )
    listing = leaf(
        metric_actions, "list", f"{handlers}:metrics_list", "the metrics you may use", here
    )
    listing.add_argument("--search", help="words to look for")
    show = leaf(metric_actions, "show", f"{handlers}:metric_show", "one metric's definition", here)
    show.add_argument("id", help="category/name")
    run = leaf(metric_actions, "query", f"{handlers}:metrics_query", "compute a metric", here)
    run.add_argument("id", help="category/name")
    run.add_argument("--dimension", action="append", default=[], help="breakdown (repeatable)")
    run.add_argument("--filter", action="append", default=[], metavar="DIM=VALUE[,VALUE]")
    run.add_argument("--grain", choices=["day", "week", "month", "quarter", "year", "total"])
    run.add_argument("--from", dest="start", type=day, help="first day (YYYY-MM-DD)")
    run.add_argument("--to", dest="end", type=day, help="first day excluded (YYYY-MM-DD)")
    run.add_argument("--limit", type=ROWS, help="most rows (never above the row cap)")
    add_format(run, "csv: a cut result exits 6 and says why on stderr")


def add_admin_metrics(
    area: Subparsers, leaf: Leaf, client: Sequence[argparse.ArgumentParser]
) -> None:
    handlers = "cli.commands.admin_metrics"
    metrics = area.add_parser("metrics", help="metric definitions").add_subparsers(
        title="metrics commands", metavar="ACTION", required=True
    )
    load = leaf(
        metrics, "import", f"{handlers}:import_", "validate and import a folder of YAML", client
    )
    load.add_argument("directory")
    load.add_argument("--replace", action="store_true", help="remove metrics the files lack")
    load.add_argument("--dry-run", action="store_true", help="validate only")
    out = leaf(metrics, "export", f"{handlers}:export", "every definition as YAML", client)
    out.add_argument("-o", "--output", help="file to write (default stdout)")
    delete = leaf(metrics, "delete", f"{handlers}:delete", "remove a metric", client)
    delete.add_argument("id", help="category/name")
