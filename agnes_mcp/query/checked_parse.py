"""The first two walls in one call: the sqlglot policy, then DuckDB's own reading.

When sqlglot cannot parse the text, DuckDB's statement splitter still names what it is
(several statements, or not a SELECT), so the refusal says so instead of a parse error.
"""

from __future__ import annotations

from agnes_mcp.query import policy
from agnes_mcp.query.duckdb_check import cross_check, statement_kinds
from agnes_mcp.query.policy import ParsedQuery
from agnes_mcp.query.refusals import MultipleStatements, ReadOnly, SqlParseError


def parse_checked(sql: str, dialect: str) -> ParsedQuery:
    try:
        parsed = policy.parse(sql, dialect)
    except SqlParseError:
        kinds = statement_kinds(sql) if dialect == policy.DUCKDB else None
        if kinds and len(kinds) > 1:
            raise MultipleStatements(f"The SQL holds {len(kinds)} statements; send one.") from None
        if kinds and kinds[0] != "SELECT":
            raise ReadOnly(f"Only SELECT queries are accepted, not {kinds[0]}.") from None
        raise
    if dialect == policy.DUCKDB:
        cross_check(sql, parsed.table_names)
    return parsed
