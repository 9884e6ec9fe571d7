"""``%agnes`` and ``%%agnes_sql``: Agnes in IPython and Jupyter, after
``%load_ext agnes_mcp.notebook``.

**Which workspace.** The magics use the :class:`~agnes_mcp.notebook.workspace.Workspace`
in the notebook variable ``agnes_ws``. The first magic that needs one and finds none calls
``connect()`` (the workspace of the current folder or above; outside any,
``AGNES_SERVER_URL`` + ``AGNES_TOKEN``) and stores it there. ``%agnes connect ...`` picks
another; ``%agnes use ws`` (or plainly ``agnes_ws = ws``) hands the magics one of your
own. ``agnes_ws`` is an ordinary Workspace: ``agnes_ws.snapshot(...)`` works beside them.

**%agnes COMMAND** (``%agnes help`` shows every command's options):
``catalog [SEARCH] [--mode MODE]``, ``schema TABLE``, ``describe TABLE [N]``, ``pull``,
``snapshots``, ``metrics [SEARCH]``, ``whoami``,
``connect [PATH] [--server-url URL] [--token TOKEN]``, ``use VAR``. Each returns what the
Workspace method of the same name returns (``pull`` prints what it did instead), so
``tables = %agnes catalog`` works.

**%%agnes_sql [--remote] [--limit N] [-o VAR]** runs the cell, one SELECT, through the
rails: :meth:`Workspace.query` (DuckDB SQL on local and server tables, snapshots and kept
results), or with ``--remote`` :meth:`Workspace.query_remote` (in the remote table's
warehouse, under the scan cap). ``{name}`` binds the notebook variable ``name`` as one
literal (see :mod:`agnes_mcp.notebook.sql_params`). The Result is shown (rows, counts,
what cut it and how to get the rest, provenance) and kept in ``_agnes_result`` (None
when the cell was refused or could not run). Without ``-o`` the cell's value is the
Result; with ``-o VAR``, ``VAR`` is the rows as a pandas DataFrame and the cell has no
value, so the Result is shown once. A refusal raises
:class:`~agnes_mcp.notebook.refusal.AgnesRefusal`, shown as its code, message, hint and
next step rather than a traceback; ``VAR`` is then left as it was. A cut result's
sentence names ``--limit`` (the magic's flag), not ``limit=``.
"""

from __future__ import annotations

import argparse
import keyword
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display as _display

from agnes_mcp.notebook.connection import connect
from agnes_mcp.notebook.refusal import AgnesRefusal
from agnes_mcp.notebook.result import (
    MissingExtra,
    PullIncompleteWarning,
    Result,
    TruncatedResultWarning,
)
from agnes_mcp.notebook.sql_params import DUCKDB, BindError, bind, remote_dialects
from agnes_mcp.notebook.workspace import Workspace
from agnes_sync.suggest import did_you_mean

WORKSPACE_VAR = "agnes_ws"  # the workspace the magics use
RESULT_VAR = "_agnes_result"  # the last %%agnes_sql cell's Result (None: it had none)
MODES = ("local", "materialized", "remote")


# IPython's magic_arguments and display() carry no annotations: reached through these.
_arguments_api: Any = _magic_arguments
display: Callable[[object], None] = _display
Function = TypeVar("Function", bound=Callable[..., object])


def argument(*names: str, **options: Any) -> Any:
    """One argparse argument of a magic (``magic_arguments.argument``)."""
    return _arguments_api.argument(*names, **options)


def arguments(name: str | None, *declared: Any) -> Callable[[Function], Function]:
    """Give ``function`` IPython's argument parser (``@magic_arguments`` with
    ``@argument`` decorators, in the order given); ``name`` is the usage line's."""

    def decorate(function: Function) -> Function:
        target: Any = function
        for add in reversed(declared):  # applied bottom-up, as decorators would be
            add(target)
        _arguments_api.magic_arguments(name)(target)
        return function

    return decorate


def parse(function: Callable[..., object], line: str) -> argparse.Namespace:
    """``line`` parsed by ``function``'s parser (a bad line raises UsageError)."""
    parsed: argparse.Namespace = _arguments_api.parse_argstring(function, line)
    return parsed


def _variable(name: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"'{name}' is not a Python variable name.")
    return name


# --- %agnes commands: each takes the magics and its parsed arguments ----------------------

Command = Callable[["AgnesMagics", argparse.Namespace], object]


@arguments(
    "agnes catalog",
    argument("search", nargs="?", help="Words to look for in table names and descriptions."),
    argument("--mode", choices=MODES, help="Only tables of this query mode."),
)
def _catalog(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """The tables you may use (and the metric definitions)."""
    return magics.workspace().catalog(args.search, args.mode)


@arguments(
    "agnes schema",
    argument("table", help="The table's id, as the catalog names it."),
)
def _schema(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """A table's columns: types, descriptions, statistics."""
    return magics.workspace().schema(args.table)


@arguments(
    "agnes describe",
    argument("table", help="The table's id, as the catalog names it."),
    argument("n", nargs="?", type=int, default=5, help="Sample rows to show (default 5)."),
)
def _describe(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """A few rows of a table."""
    return magics.workspace().describe(args.table, args.n)


@arguments("agnes pull")
def _pull(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """Download (or refresh) the server's tables into the workspace's folder."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PullIncompleteWarning)  # said below, line by line
        summary = magics.workspace().pull()
    print(
        f"{summary.tables:,} tables: downloaded {summary.downloaded:,} files "
        f"({summary.bytes:,} bytes), {summary.unchanged:,} unchanged, "
        f"{summary.removed:,} removed, in {summary.seconds:.1f} s."
    )
    from agnes_sync.pull.pull import failed_hint

    for line in summary.failure_lines():
        print(f"failed: {line}", file=sys.stderr)
    if summary.failed:
        print(f"hint: {failed_hint(summary.failed, '%agnes pull')}", file=sys.stderr)
    return None


@arguments("agnes snapshots")
def _snapshots(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """Your snapshots of remote tables."""
    return magics.workspace().snapshots()


@arguments(
    "agnes metrics",
    argument("search", nargs="?", help="Words to look for in metric ids and descriptions."),
)
def _metrics(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """The company's metric definitions."""
    return magics.workspace().metrics(args.search)


@arguments("agnes whoami")
def _whoami(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """Who the server takes you for: user, groups, scopes."""
    return magics.workspace().whoami()


@arguments(
    "agnes connect",
    argument("path", nargs="?", help="A workspace folder (default: the current one, or above)."),
    argument("--server-url", help="The server, for a notebook outside any workspace."),
    argument("--token", help="Your token (prefer AGNES_TOKEN: a notebook keeps what you type)."),
)
def _connect(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """Choose the workspace (or server) the magics use; it is kept in agnes_ws."""
    found = connect(args.path, server_url=args.server_url, token=args.token)
    magics.user_ns[WORKSPACE_VAR] = found
    return found


@arguments(
    "agnes use",
    argument("var", help="A notebook variable holding a Workspace (from connect())."),
)
def _use(magics: AgnesMagics, args: argparse.Namespace) -> object:
    """Make the magics use a Workspace of your own."""
    name = _variable(args.var)
    found = magics.user_ns.get(name)
    if not isinstance(found, Workspace):
        raise UsageError(
            f"'{name}' is {type(found).__name__ if name in magics.user_ns else 'not set'}"
            ", not an Agnes Workspace: make one with ws = connect(...)."
        )
    magics.user_ns[WORKSPACE_VAR] = found
    return found


COMMANDS: dict[str, Command] = {
    "catalog": _catalog,
    "schema": _schema,
    "describe": _describe,
    "pull": _pull,
    "snapshots": _snapshots,
    "metrics": _metrics,
    "whoami": _whoami,
    "connect": _connect,
    "use": _use,
}


def _help() -> str:
    """Every command's usage and options (their parsers' help, without its reST marks)."""
    blocks = []
    for command in COMMANDS.values():
        text = (getattr(command, "__doc__", None) or "").replace("::\n", "").strip()
        blocks.append(text)  # starts with the usage line: "%agnes catalog [...]"
    return "\n\n".join(blocks)


@magics_class
class AgnesMagics(Magics):
    """``%agnes`` and ``%%agnes_sql`` (see this module's documentation)."""

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's variables."""
        shell = self.shell
        if shell is None:
            raise UsageError("The Agnes magics are not registered with a shell.")
        names: dict[str, Any] = shell.user_ns
        return names

    def workspace(self) -> Workspace:
        """The workspace in ``agnes_ws``; the first use connects and stores it there."""
        user_ns = self.user_ns
        found = user_ns.get(WORKSPACE_VAR)
        if found is None:
            found = connect()
            user_ns[WORKSPACE_VAR] = found
            print(f"Connected: {found!r} (kept in {WORKSPACE_VAR}; %agnes connect for another)")
        elif not isinstance(found, Workspace):
            raise UsageError(
                f"{WORKSPACE_VAR} holds a {type(found).__name__}, not an Agnes Workspace: "
                f"run %agnes connect, or %agnes use VAR with a Workspace of your own."
            )
        return found

    @line_magic
    def agnes(self, line: str) -> object:
        """%agnes COMMAND: catalog [SEARCH] [--mode MODE] · schema TABLE · describe TABLE
        [N] · pull · snapshots · metrics [SEARCH] · whoami · connect [PATH] [--server-url
        URL] [--token TOKEN] · use VAR · help. The workspace used is agnes_ws."""
        name, _, rest = line.strip().partition(" ")
        if name in ("", "help", "-h", "--help"):
            print(_help())
            return None
        command = COMMANDS.get(name)
        if command is None:
            raise UsageError(
                f"%agnes has no command '{name}'. {did_you_mean(name, COMMANDS)}"
                f"Commands: {', '.join(COMMANDS)}."
            )
        with _named_for_magics():
            return command(self, parse(command, rest))

    @arguments(
        "%agnes_sql",  # the help prefixes one more %
        argument("--remote", action="store_true", help="Run in the remote table's warehouse."),
        argument(
            "--limit",
            type=int,
            metavar="N",
            help="At most N rows (default: Agnes's default row limit).",
        ),
        argument("-o", "--out", metavar="VAR", help="Store the rows in VAR as a pandas DataFrame."),
    )
    @cell_magic
    def agnes_sql(self, line: str, cell: str) -> object:
        """Run the cell's SELECT through Agnes's rails; {name} binds a Python variable as
        one SQL literal (never as SQL text); {{ and }} are literal braces."""
        args = parse(AgnesMagics.agnes_sql, line)
        out = _variable(args.out) if args.out else None
        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit must be 1 or more, not {args.limit}.")
        cell = cell.strip()
        if not cell:
            raise UsageError("The cell holds no SQL: write one SELECT under %%agnes_sql.")
        user_ns = self.user_ns
        user_ns[RESULT_VAR] = None  # until this cell has a result
        ws = self.workspace()
        with _named_for_magics():
            sql = self._bind(ws, cell, args.remote)
            run = ws.query_remote if args.remote else ws.query
            found = run(sql, args.limit)
        result = Result(found.answer, found.sql, limit_flag="--limit")
        user_ns[RESULT_VAR] = result
        if out is None:
            return result
        display(result)  # says what cut it: the frame's own warning would say it twice
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TruncatedResultWarning)
                user_ns[out] = result.df()
        except MissingExtra as exc:
            raise UsageError(f"{exc} The rows are in {RESULT_VAR}.arrow().") from exc
        return None

    def _bind(self, ws: Workspace, cell: str, remote: bool) -> str:
        dialects = [DUCKDB]
        if remote and ("{" in cell or "}" in cell):  # the literals are written for the warehouse
            engines = {entry.id: entry.engine for entry in ws.catalog(query_mode="remote")}
            dialects = remote_dialects(cell, engines)
        try:
            return bind(cell, self.user_ns, dialects)
        except BindError as exc:
            raise UsageError(str(exc)) from exc


@contextmanager
def _named_for_magics() -> Iterator[None]:
    """A refusal raised here names the magics and the calls of agnes_ws, the workspace
    they use: a notebook of magics may hold no `ws` (its hint said `ws.catalog()`, its
    next step ws.query_remote(...), a NameError there)."""
    try:
        yield
    except AgnesRefusal as refusal:
        refusal.workspace_var = WORKSPACE_VAR
        raise


def register(ipython: Any) -> None:
    """Register the magics with an IPython shell (``%load_ext agnes_mcp.notebook``)."""
    ipython.register_magics(AgnesMagics)
