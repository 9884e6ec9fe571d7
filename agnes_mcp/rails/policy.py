"""The first wall: what a query may be, decided by sqlglot before anything runs.

Accepted: exactly one statement whose tree holds only query nodes (SELECT, WITH, set
operations, VALUES, subqueries, SQL-standard PIVOT inside a SELECT). Refused anywhere in
the tree: DDL and DML (also inside a CTE), COPY, ATTACH/DETACH, INSTALL/LOAD, SET/RESET,
PRAGMA, CALL, USE, transactions, EXPORT/IMPORT, SELECT INTO, DESCRIBE/SHOW/SUMMARIZE/
EXPLAIN; table functions and file paths used as tables; for DuckDB SQL, any function not
on the allow-list (``function_catalog``: catalog, system, side-effect, file and settings
functions, unknown names), for BigQuery SQL a deny-list; internal objects. Every real
table reference is resolved through CTE scoping and subqueries.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import cast

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokenizer_core import Token, TokenType

from agnes_mcp.rails import chains, function_catalog
from agnes_mcp.rails.function_catalog import Verdict
from agnes_mcp.rails.refusals import (
    FunctionNotAllowed,
    InternalObject,
    MultipleStatements,
    QueryRefused,
    ReadOnly,
    SqlParseError,
    SqlTooLarge,
    StatementNotAllowed,
    TableNotFound,
    next_step,
)
from agnes_sync.internal_names import internal_name
from agnes_sync.not_unicode import not_unicode
from agnes_sync.sql_text import parse_problem

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" is ours to judge

DUCKDB = "duckdb"
BIGQUERY = "bigquery"
MAX_SQL_CHARS = 100_000
MAX_NESTING = 200

_WRITES: tuple[type[exp.Expr], ...] = (
    exp.DDL,
    exp.DML,
    exp.Copy,
    exp.Attach,
    exp.Detach,
    exp.Install,
    exp.Set,
    exp.Pragma,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Into,
    exp.Command,
    exp.LoadData,
)
_NOT_QUERIES: tuple[type[exp.Expr], ...] = (exp.Describe, exp.Summarize, exp.Show)
_ROOTS: tuple[type[exp.Expr], ...] = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
_GENERATORS: tuple[type[exp.Expr], ...] = (exp.GenerateSeries, exp.Unnest, exp.Values)

# BigQuery SQL is BigQuery's, whose functions DuckDB's catalog does not list: there the
# check is this deny-list plus every function DuckDB's review denies (a BigQuery-dialect
# parse of a query that reads only server tables still runs on DuckDB).
_BIGQUERY_DENIED_PREFIXES = (
    "read_",
    "duckdb_",
    "pragma_",
    "parquet_",
    "sniff_",
    "bigquery_",
    "iceberg_",
    "delta_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "http",
    "load_",
    "icu_",
    "json_execute",
    "system$",
)
_BIGQUERY_DENIED_NAMES = frozenset(
    {
        "getenv",
        "glob",
        "query",
        "query_table",
        "current_setting",
        "which_secret",
        "external_query",
        "ml.predict",
        "session_user",
        "checkpoint",
        "force_checkpoint",
        "enable_profiling",
        "disable_profiling",
        "summary",
        "test_all_types",
        "json_serialize_sql",
        "json_deserialize_sql",
        "json_serialize_plan",
        "set_variable",
        "getvariable",
        "current_query",
    }
)
# BigQuery's function namespaces that reach other services: Vertex AI models (AI.GENERATE,
# ML.*), Cloud Storage objects (OBJ.GET_ACCESS_URL signs a URL to any object the
# connection may read) and Cloud KMS keys (KEYS.KEYSET_CHAIN).
_BIGQUERY_DENIED_NAMESPACES = frozenset({"ai", "ml", "obj", "keys"})
_ANONYMOUS: tuple[type[exp.Expr], ...] = (exp.Anonymous, exp.AnonymousAggFunc)
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_INTERNAL_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp"})
_PATH_CHARS = ("/", "\\", ".", ":", "*", "?", "~", "%")


@dataclass(frozen=True)
class TableRef:
    """A reference to a real table (not a CTE), as written: ``catalog.db.name``."""

    name: str
    db: str | None = None
    catalog: str | None = None

    @property
    def qualified(self) -> bool:
        return bool(self.catalog) or (bool(self.db) and self.db != "main")

    @property
    def path(self) -> str:
        return ".".join(p for p in (self.catalog, self.db, self.name) if p)


@dataclass
class ParsedQuery:
    sql: str
    dialect: str
    tree: exp.Expression
    refs: list[TableRef] = field(default_factory=list)  # real tables, resolved through scopes
    table_names: list[str] = field(default_factory=list)  # every table-like name, CTEs included
    fingerprint: str = ""


def _nesting(sql: str) -> int:
    depth = deepest = 0
    for char in sql:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(0, depth - 1)
    return deepest


# DuckDB functions whose name the rails' parser reads as a keyword (every other DuckDB
# function name parses as a call: tests/test_function_allow_list.py checks), and the name of
# the same function to write instead.
KEYWORD_NAMED = {"apply": "list_apply"}


def _parse_error(exc: ParseError | TokenError, sql: str = "") -> SqlParseError:
    """sqlglot's first problem in words (no Python class names), with its line and column;
    a call of a function named like a keyword says what to write instead."""
    errors = getattr(exc, "errors", None) or []
    line, col = (errors[0].get("line"), errors[0].get("col")) if errors else (None, None)
    named = [n for n in KEYWORD_NAMED if re.search(rf"\b{n}\s*\(", sql, re.IGNORECASE)]
    hint = (
        f"Write {KEYWORD_NAMED[named[0]]}(...) for DuckDB's {named[0]}(...): the same "
        "function, under a name the SQL checker does not read as a keyword."
        if named
        else None
    )
    return SqlParseError(
        f"The SQL does not parse: {parse_problem(exc)}.",
        hint=hint,
        details={"line": line, "column": col},
    )


def _function_name(func: exp.Func) -> str:
    if isinstance(func, _ANONYMOUS):
        return str(func.name).lower()
    return func.sql_name().lower()


@functools.cache
def _denied_classes() -> dict[type[exp.Expr], str]:
    """sqlglot's typed nodes for DuckDB functions the allow-list refuses (``version()``
    reads as ``CurrentVersion``), each with the DuckDB name. sqlglot names a typed node its
    own way, so the class is what identifies it; tests/test_function_allow_list.py checks
    no allowed function reads as one of these classes."""
    engine = Dialect.get_or_raise(DUCKDB)
    parser, keywords = engine.parser_class, engine.tokenizer_class.KEYWORDS
    found: dict[type[exp.Expr], str] = {}
    for name in function_catalog.denied_names():
        upper = name.upper()
        typed = upper in parser.FUNCTIONS or upper in parser.FUNCTION_PARSERS or upper in keywords
        if not typed or not _PLAIN_NAME.match(name):
            continue  # sqlglot reads it as an anonymous function, by its own name
        for args in ("", "()", "(a)", "(a, b)", "(a, b, c)"):
            try:
                statement = engine.parse(f"SELECT {name}{args}")[0]
            except (ParseError, TokenError):  # this arity does not parse: the next may
                continue
            node = statement.expressions[0] if isinstance(statement, exp.Select) else None
            if isinstance(node, exp.Func) and not isinstance(node, _ANONYMOUS):
                found.setdefault(type(node), name)
    return found


def _check_function(func: exp.Func, dialect: str, unknown: list[Verdict]) -> None:
    """Refuse a function the allow-list does not allow; names DuckDB does not know are
    collected in ``unknown`` (refused after the walk, once nothing worse was found)."""
    denied_as = _denied_classes().get(type(func))
    if denied_as is not None:
        raise function_catalog.refusal(function_catalog.scalar_verdict(denied_as))
    name = _function_name(func)
    verdict = function_catalog.scalar_verdict(name)
    if not verdict.allowed and verdict.reason != "unknown":
        raise function_catalog.refusal(verdict)
    if dialect != DUCKDB:
        bigquery_denied = name in _BIGQUERY_DENIED_NAMES or name.endswith("_scan")
        if bigquery_denied or name.startswith(_BIGQUERY_DENIED_PREFIXES):
            raise FunctionNotAllowed(f"The function {name}() is not allowed.")
        namespace = _namespace(func, name)
        if namespace in _BIGQUERY_DENIED_NAMESPACES:
            raise FunctionNotAllowed(
                f"The function {namespace.upper()}.{name.rsplit('.', 1)[-1].upper()}() is not "
                "allowed: it reaches another service (AI models, Cloud Storage, keys).",
                hint="Query the registered tables with SQL's own functions.",
            )
        return
    if not isinstance(func, _ANONYMOUS):
        return  # syntax (CAST, CASE, ...) or sqlglot's own name: DuckDB's parse names it
    if not verdict.allowed:
        unknown.append(verdict)
    elif name in function_catalog.LIST_AGGREGATES:
        qualified = isinstance(func.parent, exp.Dot) and func.arg_key == "expression"
        args = [_argument(a) for a in func.expressions]
        refused = function_catalog.named_aggregate_refusal(name, args, qualified=qualified)
        if refused is not None:
            raise refused


def _namespace(func: exp.Func, name: str) -> str | None:
    """The namespace a call is qualified by (``OBJ`` of ``OBJ.GET_ACCESS_URL(...)``, or of
    a quoted ```obj.get_access_url```), lower case; None for a plain call."""
    if "." in name:
        return name.split(".", 1)[0]
    parent = func.parent
    if not (isinstance(parent, exp.Dot) and func.arg_key == "expression"):
        return None
    first = parent.this
    while isinstance(first, exp.Dot):
        first = first.this
    return str(first.name).lower() if isinstance(first, exp.Expression) else None


def _argument(node: exp.Expr) -> function_catalog.Argument:
    if isinstance(node, exp.Literal):
        return function_catalog.Argument(str(node.this) if node.is_string else None, True)
    return function_catalog.Argument(None, isinstance(node, (exp.Column, exp.Null, exp.Boolean)))


def _statement_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return type(node).__name__.upper()


def empty_sql() -> SqlParseError:
    """The refusal of SQL that holds no statement."""
    return SqlParseError(
        "The SQL is empty.",
        # not the parse errors' "at the line and column given": there are none
        hint="Send one SELECT to run (the text held only blanks or comments).",
        details={"line": None, "column": None},
    )


def not_text(sql: str) -> SqlParseError | None:
    """The refusal of SQL holding a character that is not Unicode
    (:mod:`agnes_sync.not_unicode`): DuckDB cannot take such a string at all, and its
    error escaped as a traceback."""
    found = not_unicode(sql)
    if found is None:
        return None
    line, column = _position(sql, found.index)
    return SqlParseError(
        f"The SQL is not text at line {line}, column {column}: a character that is not "
        f"Unicode{found.byte}.",
        hint="Send the SQL as UTF-8 text (a file saved in another encoding: save it as "
        "UTF-8, or convert it with iconv -t utf-8).",
        details={"line": line, "column": column},
    )


def _position(sql: str, index: int) -> tuple[int, int]:
    """The line and column (from 1) of the character at ``index`` of ``sql``."""
    before = sql[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _nul(sql: str) -> SqlParseError | None:
    """The refusal of SQL holding a NUL character (U+0000): DuckDB hands a name holding
    one on cut at it (``SELECT 1 AS "a<NUL>b"`` answered a column ``a``), and no query
    needs one."""
    index = sql.find("\x00")
    if index < 0:
        return None
    line, column = _position(sql, index)
    return SqlParseError(
        f"The SQL holds a NUL character (U+0000) at line {line}, column {column}: no name "
        "or value may hold one here.",
        hint="Remove it (a string built with chr(0) works where a value needs one).",
        details={"line": line, "column": column},
    )


def parse(sql: str, dialect: str = DUCKDB) -> ParsedQuery:
    """Parse and check ``sql``; raises a :class:`QueryRefused` subclass on any violation."""
    if len(sql) > MAX_SQL_CHARS:
        raise SqlTooLarge(f"The SQL is {len(sql):,} characters; the limit is {MAX_SQL_CHARS:,}.")
    refused = not_text(sql) or _nul(sql)
    if refused is not None:
        raise refused
    if _nesting(sql) > MAX_NESTING:
        raise SqlTooLarge(f"The SQL nests parentheses deeper than {MAX_NESTING} levels.")
    try:
        engine = Dialect.get_or_raise(dialect)
        tokens = engine.tokenize(sql)  # once: for the parser and for the fingerprint
        if chains.may_chain(sql):  # before the parser, which is quadratic on a long one
            chains.check_chains(tokens)
        # A comment after the last ";" is read as an empty statement of its own.
        statements = [
            s
            for s in engine.parser().parse(tokens, sql)
            if s is not None and not isinstance(s, exp.Semicolon)
        ]
    except (ParseError, TokenError) as exc:
        raise _parse_error(exc, sql) from None
    except RecursionError:
        raise SqlTooLarge("The SQL is nested too deeply to check.") from None
    if not statements:
        raise empty_sql()
    if len(statements) > 1:
        raise MultipleStatements(f"The SQL holds {len(statements)} statements; send one.")
    tree = cast(exp.Expression, statements[0])
    if not isinstance(tree, (*_ROOTS, *_WRITES, *_NOT_QUERIES, exp.Command, exp.Pivot)):
        raise _not_a_statement(sql, tree)
    _check_tree(tree, dialect, sql)
    parsed = ParsedQuery(sql=sql, dialect=dialect, tree=tree)
    parsed.table_names = [t.name.lower() for t in tree.find_all(exp.Table) if t.name]
    parsed.refs = _real_tables(tree)
    parsed.fingerprint = _shape_hash(tokens)
    return parsed


def _not_a_statement(sql: str, tree: exp.Expression) -> ReadOnly:
    """What to say of SQL the parser read as a bare expression: a statement it does not
    know (``CHECKPOINT``, ``DEALLOCATE p``), named by its first word, or a value or
    name alone (``orders``, ``42``), which is no query."""
    first = first_keyword(sql)
    if first is not None:
        return ReadOnly(f"Only SELECT queries are accepted, not {first}.")
    if isinstance(tree, exp.Column):
        example = f"SELECT * FROM {tree.sql(dialect=DUCKDB)}"
    elif isinstance(tree, exp.Literal):
        example = f"SELECT {tree.sql(dialect=DUCKDB)}"
    else:
        example = f"SELECT {_short(sql)} FROM <table>"
    return ReadOnly(
        f"'{_short(sql)}' is not a query: only SELECT queries are accepted.",
        hint=f"Write a SELECT, e.g. {example}",
    )


def first_keyword(sql: str) -> str | None:
    """The SQL's first word when it is a keyword (``CHECKPOINT``, ``IMPORT``): how a user
    names the statement, where the parsers' own names for it (a column, PRAGMA) would not
    mean anything to them."""
    from agnes_mcp.rails.duckdb_check import sql_keywords

    words = _LEADING_COMMENTS.sub("", sql).split(None, 1)
    first = words[0].upper().rstrip(";") if words else ""
    return first if first in sql_keywords() else None


# Comments and spaces before the first word (a query may start with either).
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)


def _short(sql: str, at_most: int = 60) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= at_most else text[: at_most - 1] + "…"


def _check_tree(tree: exp.Expression, dialect: str, sql: str = "") -> None:
    if isinstance(tree, exp.Pivot) or not isinstance(tree, _ROOTS):
        raise _statement_refusal(tree, sql)
    unknown: list[Verdict] = []
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise ReadOnly(f"The query contains {_statement_kind(node)}, which is not a read.")
        if isinstance(node, _NOT_QUERIES):
            raise StatementNotAllowed(f"The query contains {_statement_kind(node)}.")
        if isinstance(node, exp.Pivot):
            _check_pivot(node, dialect)
        if isinstance(node, exp.Func) and not isinstance(node, _GENERATORS):
            _check_function(node, dialect, unknown)
        if isinstance(node, exp.Table):
            _check_table(node)
        if isinstance(node, exp.Parameter):  # BigQuery's @@project_id, @@dataset_id, @name
            raise FunctionNotAllowed(
                f"The query reads {node.sql(dialect=dialect)}, a warehouse variable or a "
                "query parameter: neither is readable here.",
                hint="Write the value into the SQL as a literal.",
            )
    if unknown:
        raise function_catalog.refusal(unknown[0])


def _statement_refusal(tree: exp.Expression, sql: str) -> QueryRefused:
    """Why a statement that is not a query (PIVOT, EXPLAIN, SHOW, a write...) is refused,
    named as the user wrote it when we can (found only for a refusal: ~0.02 ms)."""
    named = first_keyword(sql) or _statement_kind(tree)
    if isinstance(tree, exp.Pivot):
        return StatementNotAllowed(
            f"{named} statements are not accepted.",
            hint=f"Write it inside a SELECT: SELECT * FROM <table> {named} (...), as in "
            "SELECT * FROM orders PIVOT (count(*) FOR status IN ('completed', 'refunded')).",
        )
    if isinstance(tree, _NOT_QUERIES):
        return StatementNotAllowed(f"{named} statements are not accepted.")
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "EXPLAIN":
        return StatementNotAllowed(
            f"{named} statements are not accepted.",
            hint="Query plans are not shown here; run the query itself (with a LIMIT).",
        )
    if isinstance(tree, exp.Command) and str(tree.this).upper() in ("SUMMARIZE", "SHOW"):
        return StatementNotAllowed(f"{named} statements are not accepted.")
    return ReadOnly(f"Only SELECT queries are accepted, not {named}.")


def _check_pivot(pivot: exp.Pivot, dialect: str) -> None:
    """DuckDB's own ``PIVOT t ON c USING f`` inside a query: an ON column without an IN
    list needs its distinct values read before the query's columns are known, which DuckDB
    does as a statement of its own, so the query is not one SELECT (DuckDB's parse of it
    fails). With the values named it is one, and accepted."""
    source = pivot.args.get("this")
    if source is None or pivot.args.get("unpivot"):
        return  # the SQL-standard PIVOT (...) on a table, or an UNPIVOT: one SELECT
    open_columns = [e for e in pivot.expressions if not isinstance(e, exp.In)]
    if not open_columns:
        return
    column = open_columns[0].sql(dialect=dialect)
    table = source.sql(dialect=dialect)
    using = ", ".join(u.sql(dialect=dialect) for u in pivot.args.get("using") or []) or "count(*)"
    raise StatementNotAllowed(
        f"PIVOT {table} ON {column} without an IN list is not accepted: DuckDB would first "
        f"read the distinct values of {column} to make its columns, as a statement of its own.",
        hint=f"Name the values it makes columns of (SELECT DISTINCT {column} FROM {table} "
        f"lists them): SELECT * FROM (PIVOT {table} ON {column} IN ('<value>', ...) USING "
        f"{using}), or the SQL-standard SELECT * FROM {table} PIVOT ({using} FOR {column} "
        "IN ('<value>', ...)).",
        details={"column": column},
    )


def _check_table(table: exp.Table) -> None:
    source = table.this
    if isinstance(source, _GENERATORS):
        return
    if isinstance(source, exp.Func):
        verdict = function_catalog.table_verdict(_function_name(source))
        raise function_catalog.refusal(verdict, table=True)
    if isinstance(source, exp.Dot):
        raise _too_many_parts(table)
    if not isinstance(source, exp.Identifier):
        if isinstance(source, exp.Expression):
            raise FunctionNotAllowed(f"'{table.sql()}' is not a table name.")
        return
    name = str(source.name)
    if _dotted_name(name):
        raise _quoted_dots(name)
    if any(char in name for char in _PATH_CHARS):
        raise FunctionNotAllowed(f"'{name}' looks like a file path; files are not tables here.")
    lowered = name.lower()
    schemas = {str(part).lower() for part in (table.db, table.catalog) if part}
    if internal_name(lowered) or schemas & _INTERNAL_SCHEMAS:
        raise InternalObject(f"'{table.sql()}' is an internal object.")


def _too_many_parts(table: exp.Table) -> TableNotFound:
    """A name of more than three parts (``a.b.c.d``): no table is named so, in DuckDB or a
    warehouse; said whole (its parts were read as ``a.b.d``)."""
    written = ".".join(part.name for part in table.parts)
    last = table.parts[-1].name
    return TableNotFound(
        f"There is no table '{written}' you may read: a table is named with at most three "
        "parts (table, schema.table or catalog.schema.table).",
        hint="Name the table as the catalog tool lists it (its id), or by its warehouse path.",
        next=next_step("catalog", "agnes catalog", search=last),
        details={"table": written, "suggestions": []},
    )


# A data file's name DuckDB would read as a table: "x.csv", "y.parquet.gz".
_FILE_EXTENSIONS = frozenset(
    (
        *("csv", "tsv", "txt", "tbl", "dat", "parquet", "json", "jsonl", "ndjson", "xlsx"),
        *("xls", "arrow", "ipc", "feather", "avro", "orc", "db", "duckdb", "sqlite"),
        *("sqlite3", "gz", "zst", "zstd", "bz2", "xz", "lz4", "snappy"),
    )
)
_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _dotted_name(name: str) -> bool:
    """Whether ``name`` (one quoted identifier) reads as a dotted table name written
    quoted whole (``"main.orders"``), not as a file's name."""
    parts = name.split(".")
    return (
        len(parts) > 1
        and all(_NAME_PART.fullmatch(part) for part in parts)
        and parts[-1].lower() not in _FILE_EXTENSIONS
    )


def _quoted_dots(name: str) -> TableNotFound:
    quoted = ".".join(f'"{part}"' for part in name.split("."))
    return TableNotFound(
        f"There is no table '{name}' you may read: quoted whole, \"{name}\" is one name "
        "with dots in it, not a table in a schema.",
        hint=f"Quote each part on its own ({quoted}), or leave the quotes out.",
        next=next_step("catalog", "agnes catalog", search=name.split(".")[-1]),
        details={"table": name, "suggestions": []},
    )


def _real_tables(tree: exp.Expression) -> list[TableRef]:
    return [_ref(table) for table in real_table_nodes(tree)]


def real_table_nodes(tree: exp.Expression) -> list[exp.Table]:
    """The nodes of ``tree`` that read a real table, not a CTE: resolved through every
    scope (CTEs that shadow or alias table names, their order, recursion, subqueries,
    lateral joins). The one answer to "is this name a table?": the grants are checked on
    these, a remote query's names are rewritten on these and its scan is priced on these,
    so a name read as a CTE by one and as a table by another cannot slip between them."""
    try:
        scopes = list(traverse_scope(tree))
    except Exception:  # noqa: BLE001 - scope analysis gave up: every table node counts as real
        scopes = []
    named = [t for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)]
    if not scopes:
        return named
    found: dict[int, exp.Table] = {}
    for scope in scopes:
        for source in scope.sources.values():
            if isinstance(source, exp.Table) and source.name:
                found.setdefault(id(source), source)
    # Tables scope analysis does not list as sources (e.g. inside function arguments)
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    anchors = {id(table) for table in _anchor_reads(tree)}
    for table in named:
        if id(table) not in found and (id(table) in anchors or not _is_cte_name(table, cte_names)):
            found[id(table)] = table
    return list(found.values())


def _anchor_reads(tree: exp.Expression) -> list[exp.Table]:
    """Reads of a table named like the recursive CTE they stand in, in its first branch:
    DuckDB binds ``WITH RECURSIVE t AS (SELECT ... FROM t UNION ...)``'s first branch
    before ``t`` exists as a CTE, so that ``t`` is the table (scope analysis takes it for
    the CTE). Every read of the name in that branch counts, a CTE of the same name nested
    in it too: a name wrongly counted is refused or priced, never read unchecked.

    Only a UNION recurses in DuckDB: a "recursive" CTE over an EXCEPT or INTERSECT is an
    ordinary one, whose every read of its own name, in either branch, is the table (scope
    analysis takes any set operation for a recursion)."""
    reads: list[exp.Table] = []
    for cte in tree.find_all(exp.CTE):
        scope = cte.parent
        body = cte.this
        if not (isinstance(scope, exp.With) and scope.args.get("recursive")):
            continue
        if isinstance(body, exp.Union):
            branch = body.this
        elif isinstance(body, exp.SetOperation):
            branch = body
        else:
            continue
        name = cte.alias_or_name.lower()
        reads.extend(
            t
            for t in branch.find_all(exp.Table)
            if isinstance(t.this, exp.Identifier)
            and not (t.db or t.catalog)
            and t.name.lower() == name
        )
    return reads


def _is_cte_name(table: exp.Table, cte_names: set[str]) -> bool:
    return not (table.db or table.catalog) and table.name.lower() in cte_names


def table_ref(table: exp.Table) -> TableRef:
    """The reference a table node makes, as the grants are checked on it."""
    return _ref(table)


def _ref(table: exp.Table) -> TableRef:
    return TableRef(
        name=table.name.lower(),
        db=str(table.db).lower() or None,
        catalog=str(table.catalog).lower() or None,
    )


_LITERALS = frozenset(
    {
        TokenType.STRING,
        TokenType.NUMBER,
        TokenType.NATIONAL_STRING,
        TokenType.BIT_STRING,
        TokenType.HEX_STRING,
        TokenType.BYTE_STRING,
        TokenType.RAW_STRING,
        TokenType.HEREDOC_STRING,
    }
)


def fingerprint(sql: str, dialect: str) -> str:
    """A hash of the query's shape: literals become '?', case and spacing do not count.

    Computed from tokens (~10x cheaper than re-rendering the tree)."""
    return _shape_hash(Dialect.get_or_raise(dialect).tokenize(sql))


def _shape_hash(tokens: list[Token]) -> str:
    shape = " ".join("?" if t.token_type in _LITERALS else t.text.lower() for t in tokens)
    return hashlib.sha256(shape.encode()).hexdigest()[:16]
