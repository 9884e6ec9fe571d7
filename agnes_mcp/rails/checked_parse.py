"""The first two walls in one call: the sqlglot policy, then DuckDB's own reading.

When sqlglot cannot parse the text, DuckDB's statement splitter still names what it is
(several statements, or not a SELECT), so the refusal says so instead of a parse error.

Accepted parses are kept in a small LRU keyed by the exact text and dialect: the checks
depend on nothing else, and agents repeat queries (retries, ``describe``, dashboards).
Grants and query modes are resolved afresh on every call; refusals are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from agnes_mcp.rails import policy
from agnes_mcp.rails.duckdb_check import (
    cross_check,
    duckdb_syntax_error,
    sql_keywords,
    statement_kinds,
)
from agnes_mcp.rails.engine_errors import EngineError, previous_word
from agnes_mcp.rails.policy import ParsedQuery
from agnes_mcp.rails.refusals import (
    FunctionNotAllowed,
    InternalObject,
    MultipleStatements,
    ReadOnly,
    SqlParseError,
)
from agnes_sync.suggest import did_you_mean

# Refusals of a name or a function in sqlglot's reading of the SQL (not of what the
# statement is: a write, several statements, too large).
_OF_NAMES = (FunctionNotAllowed, InternalObject)
CACHE_ENTRIES = 512
CACHE_MAX_SQL = 20_000  # longer texts are checked every time (and not kept in memory)

_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], ParsedQuery] = OrderedDict()


def parse_checked(sql: str, dialect: str) -> ParsedQuery:
    key = (dialect, sql)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    parsed = _check(sql, dialect)
    if len(sql) <= CACHE_MAX_SQL:
        with _lock:
            _cache[key] = parsed
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
    return parsed


def _check(sql: str, dialect: str) -> ParsedQuery:
    refused = policy.not_text(sql)
    if refused is not None:  # before DuckDB reads it (it cannot)
        raise refused
    try:
        parsed = policy.parse(sql, dialect)
    except SqlParseError:
        kinds = statement_kinds(sql) if dialect == policy.DUCKDB else None
        if kinds and len(kinds) > 1:
            raise MultipleStatements(f"The SQL holds {len(kinds)} statements; send one.") from None
        if kinds and kinds[0] != "SELECT":
            said = policy.first_keyword(sql) or kinds[0]
            raise ReadOnly(f"Only SELECT queries are accepted, not {said}.") from None
        if dialect == policy.DUCKDB:
            engine = duckdb_syntax_error(sql)
            if engine is not None:  # DuckDB points at the right token; say what it says
                raise _syntax_error(sql, engine) from None
        raise
    except _OF_NAMES as refused:
        # sqlglot reads syntax DuckDB does not (BigQuery's pipes: FROM t |> SELECT x) into
        # names of its own making (a CTE "__tmp1"): a refusal of those names would blame
        # the caller for text they never wrote, where DuckDB cannot run the query at all.
        engine = duckdb_syntax_error(sql) if dialect == policy.DUCKDB else None
        if engine is not None:
            raise _syntax_error(sql, engine) from refused
        raise
    if dialect == policy.DUCKDB:
        cross_check(sql, parsed.table_names)
    return parsed


def _syntax_error(sql: str, engine: EngineError) -> SqlParseError:
    hint = "Fix the SQL at the line and column given; only one SELECT is accepted."
    keywords = sql_keywords()
    # A misspelt keyword is either the word DuckDB points at (SELEC) or, when it was read
    # as an alias, the word before it (FRM in "SELECT x FRM t").
    for word in (previous_word(sql, engine), engine.near):
        if word and word.isalpha() and word.upper() not in keywords:
            suggestion = did_you_mean(word.upper(), keywords, cutoff=0.8)
            if suggestion:
                hint = suggestion + hint
                break
    return SqlParseError(
        f"The SQL does not parse{engine.where}: {engine.message}.",
        hint=hint,
        details=engine.details(),
    )


def clear_cache() -> None:
    with _lock:
        _cache.clear()
