"""Which functions a query may call: DuckDB's function catalog, reviewed, kept as data.

``functions.csv`` beside this module holds one line per function the installed DuckDB
knows (``duckdb_functions()``: scalar, aggregate, window, macro, table, table_macro and
pragma functions, ``pg_catalog`` macros included), plus a few ``syntax`` names DuckDB's
parser emits without a catalog entry (``unnest``/``unlist`` in a select list)::

    name,kind,schema,verdict,reason
    pg_get_viewdef,macro,pg_catalog,denied,catalog
    sum,aggregate,main,allowed,aggregate

``verdict`` is ``allowed``, ``denied`` or ``unclassified`` (not reviewed yet: refused like
a denied one). ``reason`` is the area of an allowed function, or why one is denied (see
:data:`DENIED_REASONS`). A call is allowed only when every entry of its name in the
position it is called from (a table source, or anywhere else) is allowed; a name with no
entry is refused as unknown.

After a DuckDB upgrade, regenerate: existing verdicts are kept, new functions come in as
``unclassified`` (``tests/test_function_allow_list.py`` fails until each is reviewed), and
functions DuckDB no longer has are dropped::

    uv run python -m agnes_mcp.rails.function_catalog           # rewrite functions.csv
    uv run python -m agnes_mcp.rails.function_catalog --check   # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agnes_mcp.rails.refusals import FunctionNotAllowed, SqlParseError
from agnes_sync.suggest import did_you_mean

DATA_FILE = Path(__file__).with_name("functions.csv")
ALLOWED, DENIED, UNCLASSIFIED = "allowed", "denied", "unclassified"
VERDICTS = (ALLOWED, DENIED, UNCLASSIFIED)
SYNTAX = "syntax"  # names DuckDB's parser produces that have no catalog entry of their own
SCALAR_KINDS = frozenset({"scalar", "aggregate", "window", "macro", SYNTAX})
TABLE_KINDS = frozenset({"table", "table_macro"})
COLUMNS = ("name", "kind", "schema", "verdict", "reason")
# Functions that call an aggregate named by a string argument: list_aggr(l, 'sum').
LIST_AGGREGATES = frozenset(
    {"list_aggregate", "list_aggr", "aggregate", "array_aggregate", "array_aggr"}
)

# Why a function is denied, and what the refusal's hint tells the caller instead.
DENIED_REASONS: dict[str, tuple[str, str]] = {
    "catalog": (
        "reads the database's own catalog",
        "Use the catalog, schema and describe tools to learn about tables and columns.",
    ),
    "system_info": (
        "reports on the system (version, user, session, memory, logs)",
        "Use the catalog, schema and describe tools to learn about tables and columns.",
    ),
    "side_effects": (
        "has side effects (sleeps, logs, or changes sequences or session state)",
        "Queries only read: nothing may sleep, log or change state.",
    ),
    "files_network": (
        "reaches files, the network or other engines",
        "Query registered tables by name; files and outside resources are not reachable.",
    ),
    "settings": (
        "reads settings, variables or secrets",
        "Settings, variables and secrets are the server's; ask an admin.",
    ),
    "extensions": (
        "manages extensions",
        "Extensions are fixed by the server; ask an admin.",
    ),
    "dynamic_sql": (
        "runs, parses or plans SQL held in a string",
        "Write the query itself; SQL held in strings is not run.",
    ),
    "internal": (
        "is an engine internal",
        "Use the documented function instead (docs/query.md, 'Functions').",
    ),
    "table_source": (
        "is a table function",
        "Query registered tables by name; range, generate_series and unnest make rows.",
    ),
    "statement": (
        "is a PRAGMA",
        "Use the catalog, schema and describe tools instead of PRAGMA.",
    ),
}
ALLOWED_AREAS = frozenset(
    {
        "aggregate",
        "window",
        "operator",
        "math",
        "string",
        "regex",
        "date_time",
        "list",
        "struct_map",
        "json",
        "hash_encode",
        "bits",
        "conditional",
        "type",
        "geometry",
        "variant",
        "text_similarity",
        "random",
        "generator",
    }
)
UNKNOWN_HINT = "Only DuckDB's built-in functions an analyst needs are available (docs/query.md)."
UNREVIEWED_HINT = "This function is new in this DuckDB and not reviewed yet; ask an admin."


@dataclass(frozen=True)
class Entry:
    """One reviewed function: its name and kind as DuckDB lists them, and the verdict."""

    name: str
    kind: str
    schema: str
    verdict: str
    reason: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.kind)


@dataclass(frozen=True)
class Verdict:
    """What the allow-list says about a name in one position."""

    name: str
    allowed: bool
    reason: str  # the area when allowed; else a DENIED_REASONS key, "unclassified", "unknown"

    @property
    def why(self) -> str:
        if self.reason == "unknown":
            return "is not a function Agnes knows"
        if self.reason == UNCLASSIFIED:
            return "has not been reviewed"
        return DENIED_REASONS.get(self.reason, ("is not allowed", ""))[0]

    @property
    def hint(self) -> str:
        if self.reason == UNCLASSIFIED:
            return UNREVIEWED_HINT
        return DENIED_REASONS.get(self.reason, ("", UNKNOWN_HINT))[1] or UNKNOWN_HINT


# --- reading and writing the data file ------------------------------------------------------


def read(path: Path | None = None) -> list[Entry]:
    path = path or DATA_FILE
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    rows = list(csv.reader(lines))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise ValueError(f"{path}: the first row must be the header {','.join(COLUMNS)}")
    entries: list[Entry] = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(COLUMNS) or row[3] not in VERDICTS:
            raise ValueError(f"{path}: row {number} is not name,kind,schema,verdict,reason")
        entries.append(Entry(row[0].lower(), *row[1:]))
    return entries


def render(entries: Iterable[Entry]) -> str:
    out = io.StringIO()
    out.write(
        "# DuckDB's functions, reviewed: which a query may call (rails/function_catalog.py).\n"
        "# Regenerate after a DuckDB upgrade: uv run python -m agnes_mcp.rails.function_catalog\n"
        "# then review every 'unclassified' line (verdict allowed or denied, and a reason).\n"
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in sorted(entries, key=lambda e: e.key):
        writer.writerow((e.name, e.kind, e.schema, e.verdict, e.reason))
    return out.getvalue()


def installed() -> list[tuple[str, str, str]]:
    """(name, kind, schema) of every function a fresh DuckDB connection has."""
    import duckdb

    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT DISTINCT lower(function_name), function_type, schema_name "
            "FROM duckdb_functions() ORDER BY ALL"
        ).fetchall()
    return [(str(n), str(k), str(s)) for n, k, s in rows]


def regenerate(
    entries: Sequence[Entry], present: Iterable[tuple[str, str, str]]
) -> tuple[list[Entry], list[Entry], list[Entry]]:
    """(merged, added, dropped): verdicts kept for what is still there, new functions
    ``unclassified``, functions DuckDB no longer has dropped (``syntax`` names stay)."""
    known = {e.key: e for e in entries}
    merged: dict[tuple[str, str], Entry] = {}
    added: list[Entry] = []
    for name, kind, schema in present:
        old = known.get((name, kind))
        if old is None:
            new = Entry(name, kind, schema, UNCLASSIFIED, "")
            added.append(new)
            merged[new.key] = new
        else:
            merged[old.key] = replace(old, schema=schema)
    for entry in entries:
        if entry.kind == SYNTAX:
            merged.setdefault(entry.key, entry)
    dropped = [e for e in entries if e.key not in merged]
    return sorted(merged.values(), key=lambda e: e.key), added, dropped


# --- lookups for the walls ----------------------------------------------------------------------


@functools.cache
def _index() -> dict[str, tuple[Entry, ...]]:
    by_name: dict[str, list[Entry]] = {}
    for entry in read():
        by_name.setdefault(entry.name, []).append(entry)
    return {name: tuple(found) for name, found in by_name.items()}


def _verdict(name: str, kinds: frozenset[str]) -> Verdict:
    lowered = name.lower()
    every = _index().get(lowered, ())
    entries = [e for e in every if e.kind in kinds]
    for entry in entries or every:  # none here: a denial elsewhere still says why
        if entry.verdict != ALLOWED:
            return Verdict(
                lowered, False, entry.reason if entry.verdict == DENIED else UNCLASSIFIED
            )
    if not entries:
        return Verdict(lowered, False, "unknown")
    return Verdict(lowered, True, entries[0].reason)


@functools.cache
def scalar_verdict(name: str) -> Verdict:
    """A function called anywhere but as a table source (scalar, aggregate, window, macro)."""
    return _verdict(name, SCALAR_KINDS)


@functools.cache
def table_verdict(name: str) -> Verdict:
    """A function used as a table source (``FROM f(...)``)."""
    return _verdict(name, TABLE_KINDS)


def aggregate_allowed(name: str) -> bool:
    """Whether ``name`` is an allowed aggregate (``list_aggregate(l, 'name')`` calls one)."""
    entries = [e for e in _index().get(name.lower(), ()) if e.kind == "aggregate"]
    return bool(entries) and all(e.verdict == ALLOWED for e in entries)


@functools.cache
def allowed_names() -> tuple[str, ...]:
    """Names callable outside a table source, for "did you mean" (no operators)."""
    return tuple(
        sorted(
            name
            for name, entries in _index().items()
            if name[:1].isalpha() and scalar_verdict(name).allowed
        )
    )


@functools.cache
def denied_names() -> tuple[str, ...]:
    """Names refused outside a table source (denied or unclassified there)."""
    return tuple(
        sorted(
            name
            for name, entries in _index().items()
            if any(e.kind in SCALAR_KINDS for e in entries) and not scalar_verdict(name).allowed
        )
    )


def clear_caches() -> None:
    """Forget the loaded list (after the data file changed)."""
    for cached in (_index, scalar_verdict, table_verdict, allowed_names, denied_names):
        cached.cache_clear()


# --- refusals ------------------------------------------------------------------------------


class UnknownFunction(FunctionNotAllowed, SqlParseError):
    """A name DuckDB has no built-in function for. Still ``function_not_allowed``; also a
    parse error for DuckDB, so a remote query is tried in the other warehouses' dialects
    (a BigQuery function is unknown to DuckDB)."""


def refusal(verdict: Verdict, *, table: bool = False) -> FunctionNotAllowed:
    """The ``function_not_allowed`` refusal for a name the allow-list does not allow."""
    what = "table function" if table else "function"
    if verdict.reason == "unknown" and table:
        verdict = Verdict(verdict.name, False, "table_source")
    if verdict.reason == "unknown":
        return UnknownFunction(
            f"The function {verdict.name}() is not one Agnes knows.",
            hint=did_you_mean(verdict.name, allowed_names()) + UNKNOWN_HINT,
            details={"function": verdict.name, "line": None, "column": None},
        )
    return FunctionNotAllowed(
        f"The {what} {verdict.name}() is not allowed: it {verdict.why}.",
        hint=verdict.hint,
        details={"function": verdict.name, "reason": verdict.reason},
    )


@dataclass(frozen=True)
class Argument:
    """An argument as a wall reads it: the text of a string literal, and whether it is
    plain (a literal of any kind, or a column reference) rather than an expression."""

    literal: str | None
    plain: bool


def named_aggregate_refusal(
    function: str, args: Sequence[Argument], *, qualified: bool
) -> FunctionNotAllowed | None:
    """For ``list_aggr(l, 'name')`` and its aliases: the aggregate is named by a string,
    so the name must be a literal naming an allowed aggregate. Written as a method
    (``l.list_aggr('sum')``) the name is the first argument; qualified with a schema
    (``main.list_aggr(l, 'sum')``) the second; the parser cannot tell the two apart, so
    both places must be plain."""
    if qualified and any(not a.plain for a in args[:2]):
        name: str | None = None
    elif qualified and args and args[0].literal is not None:
        name = args[0].literal
    elif len(args) < 2:
        return None  # no aggregate named: DuckDB refuses the call itself
    else:
        name = args[1].literal
    if name is not None and aggregate_allowed(name):
        return None
    shown = f"'{name}'" if name is not None else "an expression"
    return FunctionNotAllowed(
        f"{function}() must name an allowed aggregate with a string literal, not {shown}.",
        hint="Name the aggregate plainly, e.g. list_aggr(l, 'sum').",
        details={"function": function},
    )


# --- the command ---------------------------------------------------------------------------


def summary(entries: Sequence[Entry]) -> str:
    counts = Counter((e.verdict, e.reason) for e in entries)
    lines = [f"{len(entries)} functions"]
    for verdict in VERDICTS:
        total = sum(n for (v, _), n in counts.items() if v == verdict)
        parts = ", ".join(
            f"{reason or '-'} {n}" for (v, reason), n in sorted(counts.items()) if v == verdict
        )
        lines.append(f"  {verdict}: {total}" + (f" ({parts})" if parts else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agnes_mcp.rails.function_catalog",
        description="Regenerate the reviewed list of DuckDB functions from the installed DuckDB.",
    )
    parser.add_argument("--path", type=Path, default=DATA_FILE, help="the data file")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if functions are missing, gone or unclassified",
    )
    args = parser.parse_args(argv)
    entries = read(args.path) if args.path.exists() else []
    merged, added, dropped = regenerate(entries, installed())
    for entry in added:
        print(f"new, unclassified: {entry.name} ({entry.kind}, {entry.schema})")
    for entry in dropped:
        print(f"gone from DuckDB, dropped: {entry.name} ({entry.kind})")
    unclassified = [e for e in merged if e.verdict == UNCLASSIFIED]
    if args.check:
        stale = render(merged) != (args.path.read_text() if args.path.exists() else "")
        print(summary(merged))
        return 1 if stale or unclassified else 0
    args.path.write_text(render(merged))
    print(summary(merged))
    if unclassified:
        print(f"Review the {len(unclassified)} 'unclassified' lines in {args.path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
