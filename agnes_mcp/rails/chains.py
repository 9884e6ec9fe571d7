"""Postfix chains: links applied one after another to one value — subscripts
(``x[1][1]``), fields (``a.b.c``) and method calls (``s.lower().trim()``).

sqlglot parses a chain in time quadratic in its length (it types the value again at each
link): 1,000 method calls took 9 s, and the 25,000 that fit in the rails' 100,000
characters would take hours; DuckDB's binder is quadratic on a long dotted name (15 s for
8,000 parts, before it refuses it past 1,000 levels) and does not stop for an interrupt.
Neither is bounded by the query timeout, so each such call held a core for as long as it
ran. A chain longer than :data:`MAX_CHAIN` is refused (``sql_too_large``) before either
parser reads it; real queries chain a handful (``catalog.schema.table.column``,
``j.a.b.c``, ``s.lower().trim()``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot.errors import TokenError
from sqlglot.tokenizer_core import Token, TokenType

from agnes_mcp.rails.refusals import SqlTooLarge

MAX_CHAIN = 100

_OPEN = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSE = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})
# tokens a link may follow: a value just written (a name, a literal, a closing bracket)
_OPERANDS = frozenset(
    {TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER, TokenType.STAR}
)


def longest_chain(tokens: Iterable[Token]) -> int:
    """The most links (``.``, or ``[`` after a value) applied in a row to one value."""
    runs = [0]  # the chain being read at each bracket level
    longest = 0
    operand = after_dot = False  # what the previous token was
    for token in tokens:
        kind = token.token_type
        link = kind == TokenType.DOT or (kind == TokenType.L_BRACKET and operand)
        if link:
            runs[-1] += 1
            longest = max(longest, runs[-1])
        elif not (after_dot or kind in _CLOSE or (kind == TokenType.L_PAREN and operand)):
            runs[-1] = 0  # anything else at this level starts over (an operator, a comma)
        if kind in _OPEN:
            runs.append(0)
        elif kind in _CLOSE and len(runs) > 1:
            runs.pop()
        operand = after_dot or kind in _CLOSE or kind in _OPERANDS
        after_dot = kind == TokenType.DOT
    return longest


def check_chains(tokens: Iterable[Token]) -> None:
    """Refuse SQL that chains more than :data:`MAX_CHAIN` links onto one value."""
    found = longest_chain(tokens)
    if found > MAX_CHAIN:
        raise SqlTooLarge(
            f"The SQL chains {found:,} subscripts, fields or method calls onto one value; "
            f"at most {MAX_CHAIN} are read.",
            hint="Write the chain in steps (a subquery or CTE for part of it).",
            details={"links": found, "limit": MAX_CHAIN},
        )


def may_chain(sql: str) -> bool:
    """Whether ``sql`` holds enough links for :func:`check_chains` to refuse (cheap)."""
    return sql.count(".") + sql.count("[") > MAX_CHAIN


def check_text(sql: str) -> None:
    """:func:`check_chains` on ``sql`` read with sqlglot's DuckDB tokenizer (for a wall
    that has no tokens of its own); text it cannot tokenize is left to DuckDB's parser."""
    if not may_chain(sql):
        return
    from sqlglot.dialects.dialect import Dialect

    try:
        tokens = Dialect.get_or_raise("duckdb").tokenize(sql)
    except TokenError:
        return
    check_chains(tokens)
