"""Entry point of the ``agnes`` command.

The parser is built from stdlib argparse only and each command's module is imported
when it runs, so ``agnes --help`` prints before any heavy library loads.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from cli import exit_codes
from cli.analyst_parsers import HISTORY_MAX, given, port, rows
from cli.output_flags import JsonFlag

DESCRIPTION = "Agnes: an MCP-native data server for AI analysts."


class AgnesParser(argparse.ArgumentParser):
    """argparse's parser (every command's, as sub-parsers take their parent's class), with
    a missing action named among its choices: `agnes snapshot` said only "the following
    arguments are required: ACTION", leaving what to type to --help."""

    # The words being parsed (run_in_process sets them): a required option missing because
    # it was misspelt (--selct) is named with the word given for it.
    given: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        sub = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        required = "the following arguments are required: "
        if (
            sub is not None
            and isinstance(sub.choices, dict)
            and message.startswith(required)
            and str(sub.metavar) in message
        ):
            message += f" (one of: {', '.join(sub.choices)})"
        elif message.startswith(required):
            message += self._misspelt(message.removeprefix(required).split(", "))
        else:
            message += _meant_choice(message)
        super().error(message)

    def _misspelt(self, missing: list[str]) -> str:
        """`` (--selct: did you mean --select?)`` when a word given is close to a missing
        required option and is none of this command's options (argparse reports only
        the missing option: `agnes snapshot create t --selct a` said '--select' is
        required, the word typed for it unmentioned)."""
        known = {o for a in self._actions for o in a.option_strings}
        wanted = [m for m in missing if m.startswith("--")]
        for word in AgnesParser.given:
            typed = word.partition("=")[0]
            if typed.startswith("--") and typed not in known:
                close = _closest(typed, wanted)
                if close:
                    return f" ({typed}: did you mean {close}?)"
        return ""


def _meant_choice(message: str) -> str:
    """`` (did you mean 'snapshot'?)`` for argparse's "invalid choice: 'snapshto' (choose
    from ...)" when a choice is close (a command, an area, --format cvs, --grain mnth)."""
    import re

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if found is None:
        return ""
    choices = re.findall(r"'([^']*)'", found[2]) or [c.strip() for c in found[2].split(",")]
    close = _closest(found[1], choices)
    return f" (did you mean '{close}'?)" if close else ""


def _closest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be, if one is close."""
    import difflib

    close = difflib.get_close_matches(word, candidates, n=1)
    return close[0] if close else None


def _client_flags(*, output: bool = True) -> argparse.ArgumentParser:
    """The server's URL and token, and (``output``: the command prints a result) ``--json``."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--server-url",
        type=given("the server's URL", optional=True),
        help="server URL (env AGNES_SERVER_URL, else saved or the workspace's last pull: "
        "agnes whoami says which; else http://127.0.0.1:8000)",
    )
    # An empty --token or --server-url (a script's unset variable) fell back to the saved
    # credentials: `agnes init --token ""` wired a workspace with the user's default token.
    flags.add_argument(
        "--token",
        type=given("a token", optional=True),
        help="bearer token (env AGNES_TOKEN, else saved: agnes whoami)",
    )
    if output:
        flags.add_argument("--json", action=JsonFlag, help="print JSON instead of a table")
    return flags


def _server_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--data-dir", help="data folder (env AGNES_DATA_DIR; default ./agnes-data)")
    flags.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    flags.add_argument("--port", type=port, help="port to bind (default 8000; 0 = any free)")
    flags.add_argument("--config", help="instance.yaml to read (env AGNES_CONFIG)")
    return flags


def _leaf(
    parent: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: str,
    help_text: str,
    parents: Sequence[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help_text, description=help_text, parents=list(parents))
    parser.set_defaults(handler=handler)
    return parser


def _scale(text: str) -> float:
    """The demo's size: above 0, at most 100 (what the generator makes; it raised past
    them, and the command printed its traceback)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value <= 100:  # NaN too
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 100, not {text}")
    return value


# A token's longest lifetime (agnes_mcp.access_admin.MAX_TOKEN_DAYS, which the server
# holds it to; not imported: the parser stays light).
TOKEN_DAYS_MAX = 3650


def _command(argv: Sequence[str]) -> str | None:
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command tree; given the ``argv`` to parse, the ``admin`` area's commands
    only when ``argv`` names it (they are ~60% of the tree: ~5 ms of every other command)."""
    # typed as argparse's own: the sub-parsers' actions are (at run time, AgnesParser too)
    parser: argparse.ArgumentParser = AgnesParser(prog="agnes", description=DESCRIPTION)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    client = [_client_flags()]
    server = [_server_flags()]

    demo = _leaf(
        commands,
        "demo",
        "cli.commands.server:demo",
        "build the demo data (first run only) and serve it until Ctrl-C",
        server,
    )
    demo.add_argument(
        "--scale", type=_scale, default=1.0, help="demo data size (1.0 = 1M orders, 20M sessions)"
    )
    _leaf(commands, "serve", "cli.commands.server:serve", "run the server until Ctrl-C", server)
    whoami = _leaf(
        commands,
        "whoami",
        "cli.commands.whoami:run",
        "show who the token belongs to and where the credentials came from",
        client,
    )
    whoami.add_argument(
        "--workspace",
        type=given("a folder", optional=True),
        help="workspace folder (default: the nearest one holding .agnes/)",
    )
    login = _leaf(
        commands,
        "login",
        "cli.commands.login:run",
        "check a token and save it with the server URL (inside a workspace: say which, "
        "--workspace or --global)",
        client,
    )
    where = login.add_mutually_exclusive_group()
    where.add_argument(
        "--workspace",
        metavar="W",
        type=given("a folder"),
        help="save it as the credentials of the workspace W only",
    )
    where.add_argument(
        "--global",
        dest="as_default",
        action="store_true",
        help="save it as your default (used outside workspaces), even inside one",
    )

    from cli.analyst_parsers import add_admin_metrics, add_analyst_commands

    # `agnes mcp` speaks the protocol on stdout and prints no result: --json did nothing
    add_analyst_commands(commands, _leaf, client, [_client_flags(output=False)])
    from cli.commands.notebook_export import add_notebook_commands

    add_notebook_commands(commands, _leaf, client)
    from cli.marketplace_parsers import add_admin_marketplace, add_marketplace_commands

    add_marketplace_commands(commands, _leaf, client)
    admin = commands.add_parser("admin", help="administer users, tokens, groups and grants")
    if argv is not None and _command(argv) != "admin":
        return parser
    admin_commands = admin.add_subparsers(title="admin commands", metavar="AREA", required=True)
    _user_commands(admin_commands, client)
    _token_commands(admin_commands, client)
    _oauth_commands(admin_commands, client)
    _group_commands(admin_commands, client)
    _grant_commands(admin_commands, client)
    _registry_commands(admin_commands, client)
    add_admin_metrics(admin_commands, _leaf, client)
    add_admin_marketplace(admin_commands, _leaf, client)
    return parser


def _user_commands(
    area: argparse._SubParsersAction[argparse.ArgumentParser],
    client: Sequence[argparse.ArgumentParser],
) -> None:
    users = area.add_parser("user", help="users").add_subparsers(
        title="user commands", metavar="ACTION", required=True
    )
    add = _leaf(users, "add", "cli.commands.admin_users:add", "add a user", client)
    add.add_argument("email")
    add.add_argument("--name")
    add.add_argument("--group", action="append", default=[], help="group to join (repeatable)")
    _leaf(users, "list", "cli.commands.admin_users:list_", "list users", client)
    for action, text in (("deactivate", "deactivate a user"), ("activate", "reactivate a user")):
        leaf = _leaf(users, action, f"cli.commands.admin_users:{action}", text, client)
        leaf.add_argument("user", help="id or e-mail")


def _token_commands(
    area: argparse._SubParsersAction[argparse.ArgumentParser],
    client: Sequence[argparse.ArgumentParser],
) -> None:
    tokens = area.add_parser("token", help="personal access tokens").add_subparsers(
        title="token commands", metavar="ACTION", required=True
    )
    create = _leaf(tokens, "create", "cli.commands.admin_tokens:create", "create a token", client)
    # `--user ""` (a script's unset variable) made a token for the caller, not the user meant
    create.add_argument(
        "--user", type=given("an id or e-mail", optional=True), help="id or e-mail (default: you)"
    )
    create.add_argument("--name", default="cli", help="what the token is for")
    create.add_argument(
        "--scope", action="append", choices=["data", "admin"], help="repeatable; default data"
    )
    create.add_argument(
        "--expires-days",
        type=rows(1, TOKEN_DAYS_MAX),
        help=f"lifetime in days, 1 to {TOKEN_DAYS_MAX:,} (default: none)",
    )
    listing = _leaf(tokens, "list", "cli.commands.admin_tokens:list_", "list tokens", client)
    listing.add_argument("--user", help="id or e-mail")
    listing.add_argument("--all", action="store_true", help="every user's tokens")
    revoke = _leaf(tokens, "revoke", "cli.commands.admin_tokens:revoke", "revoke a token", client)
    revoke.add_argument("token_id")


def _oauth_commands(
    area: argparse._SubParsersAction[argparse.ArgumentParser],
    client: Sequence[argparse.ArgumentParser],
) -> None:
    grants = area.add_parser("oauth", help="MCP clients' OAuth grants").add_subparsers(
        title="oauth commands", metavar="ACTION", required=True
    )
    listing = _leaf(grants, "list", "cli.commands.admin_oauth:list_", "list OAuth grants", client)
    listing.add_argument("--user", help="id or e-mail (default: every user)")
    listing.add_argument("--active", action="store_true", help="only grants not revoked")
    revoke = _leaf(
        grants,
        "revoke",
        "cli.commands.admin_oauth:revoke",
        "revoke an OAuth grant (the client is signed out at once)",
        client,
    )
    revoke.add_argument("grant_id")


def _group_commands(
    area: argparse._SubParsersAction[argparse.ArgumentParser],
    client: Sequence[argparse.ArgumentParser],
) -> None:
    groups = area.add_parser("group", help="groups and members").add_subparsers(
        title="group commands", metavar="ACTION", required=True
    )
    _leaf(groups, "list", "cli.commands.admin_groups:list_", "list groups", client)
    create = _leaf(groups, "create", "cli.commands.admin_groups:create", "create a group", client)
    create.add_argument("name")
    create.add_argument("--description", default="")
    delete = _leaf(groups, "delete", "cli.commands.admin_groups:delete", "delete a group", client)
    delete.add_argument("group")
    members = _leaf(groups, "members", "cli.commands.admin_groups:members", "list members", client)
    members.add_argument("group")
    for action, text in (("add-member", "add a member"), ("remove-member", "remove a member")):
        leaf = _leaf(
            groups, action, f"cli.commands.admin_groups:{action.replace('-', '_')}", text, client
        )
        leaf.add_argument("group")
        leaf.add_argument("user", help="id or e-mail")


def _grant_commands(
    area: argparse._SubParsersAction[argparse.ArgumentParser],
    client: Sequence[argparse.ArgumentParser],
) -> None:
    grants = area.add_parser("grant", help="grants of resources to groups").add_subparsers(
        title="grant commands", metavar="ACTION", required=True
    )
    listing = _leaf(grants, "list", "cli.commands.admin_grants:list_", "list grants", client)
    listing.add_argument("--group")
    listing.add_argument("--type", dest="resource_type")
    create = _leaf(grants, "create", "cli.commands.admin_grants:create", "grant a resource", client)
    create.add_argument("group", type=given("a group's name or id"))
    create.add_argument(
        "resource_type", type=given("a type"), help="table, metric, marketplace_plugin"
    )
    create.add_argument("resource_id", type=given("the table, metric or plugin to grant"))
    delete = _leaf(grants, "delete", "cli.commands.admin_grants:delete", "remove a grant", client)
    delete.add_argument("grant_id")


def _registry_commands(
    area: argparse._SubParsersAction[argparse.ArgumentParser],
    client: Sequence[argparse.ArgumentParser],
) -> None:
    from cli.table_flags import add_spec_flags

    handlers = "cli.commands.admin_registry"
    register = _leaf(
        area, "register-table", f"{handlers}:register_table", "register a table", client
    )
    register.add_argument("name", help="table name in SQL (lowercase letters, digits, _)")
    add_spec_flags(register, for_update=False)
    register.add_argument("--dry-run", action="store_true", help="validate only; store nothing")
    register.add_argument("--no-sync", action="store_true", help="do not start a first sync")
    _leaf(area, "list-tables", f"{handlers}:list_tables", "list registered tables", client)
    update = _leaf(area, "update-table", f"{handlers}:update_table", "change a table", client)
    update.add_argument("name")
    add_spec_flags(update, for_update=True)
    unregister = _leaf(
        area, "unregister-table", f"{handlers}:unregister_table", "unregister a table", client
    )
    unregister.add_argument("name")
    sync = _leaf(area, "sync", f"{handlers}:sync", "sync one table (or all) now", client)
    sync.add_argument(
        "table",
        nargs="?",
        type=given("a table", optional=True),
        help="table to sync (default: all)",
    )
    sync.add_argument("--no-wait", action="store_true", help="start and return at once")
    _leaf(area, "sync-status", f"{handlers}:sync_status", "sync state of every table", client)
    history = _leaf(area, "sync-history", f"{handlers}:sync_history", "past sync runs", client)
    history.add_argument("table", nargs="?", type=given("a table", optional=True))
    history.add_argument("--limit", type=rows(1, HISTORY_MAX), default=20)
    _leaf(area, "list-sources", f"{handlers}:list_sources", "configured data sources", client)
    offered = _leaf(
        area, "source-tables", f"{handlers}:source_tables", "tables a source offers", client
    )
    offered.add_argument("source")
    config = _leaf(
        area,
        "server-config",
        "cli.commands.admin_config:run",
        "show or change scan caps and agent instructions",
        client,
    )
    config.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CAP=VALUE",
        help="e.g. per_query_bytes=1GiB (repeatable)",
    )
    config.add_argument(
        "--reset", action="append", default=[], metavar="CAP", help="back to default"
    )
    rails = config.add_mutually_exclusive_group()
    rails.add_argument(
        "--instructions-file",
        metavar="PATH",
        help="Markdown agent rails for MCP instructions and workspaces' CLAUDE.md",
    )
    rails.add_argument(
        "--reset-instructions", action="store_true", help="back to the built-in agent rails"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if list(argv[:1]) == ["query"]:
        # A local query: the workspace's warm server answers it if it can (docs/cli.md).
        from cli.warm_query.client import WarmQuery

        warm = WarmQuery.for_argv(argv)
        if warm is not None:
            code = warm.answer()
            if code is not None:
                return code
            try:
                return run_in_process(argv)
            finally:
                warm.start_server()
    return run_in_process(argv)


def run_in_process(argv: Sequence[str]) -> int:
    """``agnes <argv>`` in this process (the warm query server runs this too)."""
    parser = build_parser(argv)
    AgnesParser.given = list(argv)
    args, extras = parser.parse_known_args(argv)
    if extras:
        refuse_unrecognized(parser, argv, extras)
    if args.version:
        from importlib.metadata import version

        sys.stdout.write(f"agnes {version('agnes')}\n")
        return exit_codes.OK
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return exit_codes.USAGE
    module_name, _, function_name = handler.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        result: int = function(args)
        sys.stdout.flush()  # a reader that went away is noticed here, not at exit
    except BrokenPipeError:
        return reader_gone()
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - report() re-raises what it cannot explain
        from cli.failures import report

        try:
            return report(exc, getattr(args, "json", False))
        except BrokenPipeError:
            return reader_gone()
    return result


def refuse_unrecognized(
    parser: argparse.ArgumentParser, argv: Sequence[str], extras: Sequence[str]
) -> NoReturn:
    """A usage error (exit 2) for words no parser took, from the command they were given
    to, with its usage line and the option meant where one is close (``--limt``: did you
    mean ``--limit``?); argparse reports them from ``agnes`` itself, with its usage."""
    command = parser
    for word in argv:
        choices = next(
            (a.choices for a in command._actions if isinstance(a, argparse._SubParsersAction)),
            None,
        )
        if isinstance(choices, dict) and word in choices:
            command = choices[word]
    message = f"unrecognized arguments: {' '.join(extras)}"
    options = [o for a in command._actions for o in a.option_strings if o.startswith("--")]
    for word in extras:
        if word.startswith("--"):
            close = _closest(word.partition("=")[0], options)
            if close:
                message += f" (did you mean {close}?)"
                break
    command.error(message)


def reader_gone() -> int:
    """The reader of stdout went away (``agnes query ... | head``): stop quietly, as Unix
    tools do, without a traceback now or a flush error at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (a test's capture): nothing to silence
    return exit_codes.BROKEN_PIPE


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
