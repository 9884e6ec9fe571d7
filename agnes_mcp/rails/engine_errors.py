"""Keeping what DuckDB knew when it refused a query: its suggestions ("Candidate
bindings") and the position it points at, instead of the first line only.

DuckDB's messages read::

    Binder Error: Referenced column "totl_amount" not found in FROM clause!
    Candidate bindings: "total_amount"

    LINE 1: SELECT totl_amount FROM orders
                   ^^^^^^^^^^^
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r"^LINE (\d+): ")
_CANDIDATES = re.compile(r"Candidate bindings:\s*(.*)$", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]+)"')
_NEAR = re.compile(r'at or near "([^"]+)"')


@dataclass
class EngineError:
    message: str  # the engine's own first line, kept whole
    line: int | None = None
    column: int | None = None
    candidates: list[str] = field(default_factory=list)
    near: str | None = None  # the token a syntax error points at

    @property
    def where(self) -> str:
        return f" (line {self.line}, column {self.column})" if self.line is not None else ""

    def details(self) -> dict[str, object]:
        found: dict[str, object] = {"line": self.line, "column": self.column}
        if self.candidates:
            found["suggestions"] = self.candidates
        return found


# DuckDB's advice to change a setting ("..., or SET error_on_division_by_zero=false to ...",
# 'Use "SET max_expression_depth TO x" to ...'): no query here may run SET or PRAGMA, so
# the advice is dropped and the rest of the message kept. Only DuckDB's own spelling is
# matched (SET or PRAGMA in capitals, a setting's lower-case name, then "=" or "TO"), in
# a sentence quoting nothing of the query's: a value such as 'set me' in a message stays.
_ADVICE = r"\b(?:SET|PRAGMA) +[a-z_]+ *(?:=|TO\b)"
_SETTING_CLAUSE = re.compile(r",? +or +" + _ADVICE + r"[^.']*")
_SETTING_SENTENCE = re.compile(r"[^.']*" + _ADVICE + r"[^.']*\.?")


def without_settings_advice(message: str) -> str:
    """``message`` without DuckDB's suggestions to change a setting."""
    kept = _SETTING_CLAUSE.sub("", message)
    sentences = re.split(r"(?<=\.)\s+", kept)
    left = " ".join(s for s in sentences if not _SETTING_SENTENCE.fullmatch(s)).strip()
    return left or message


def read_duckdb_error(text: str) -> EngineError:
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    error = EngineError(message=without_settings_advice(first) or "DuckDB gave no reason")
    for index, line in enumerate(lines):
        candidates = _CANDIDATES.search(line)
        if candidates:
            error.candidates = _QUOTED.findall(candidates.group(1)) or [
                c.strip() for c in candidates.group(1).split(",") if c.strip()
            ]
        position = _LINE.match(line)
        if position and index + 1 < len(lines):
            caret = lines[index + 1]
            offset = len(caret) - len(caret.lstrip(" "))
            error.line = int(position.group(1))
            error.column = max(1, offset - len(position.group(0)) + 1)
    near = _NEAR.search(error.message)
    error.near = near.group(1) if near else None
    return error


def locate(sql: str, error: EngineError) -> None:
    """Where a binder error's named identifier stands in ``sql``, when DuckDB gave no
    position (it gives none inside a subquery, and every query runs inside one)."""
    if error.line is not None:
        return
    named = _QUOTED.search(error.message)
    if named is None:
        return
    found = re.search(rf"(?<![\w.]){re.escape(named.group(1))}(?!\w)", sql, re.IGNORECASE)
    if found is None:
        return
    before = sql[: found.start()]
    error.line = before.count("\n") + 1
    error.column = found.start() - (before.rfind("\n") + 1) + 1


def previous_word(sql: str, error: EngineError) -> str | None:
    """The word before the one a syntax error points at (``FRM`` in ``SELECT x FRM t``,
    where DuckDB points at ``t``)."""
    if error.line is None or error.column is None:
        return None
    lines = sql.splitlines()
    if error.line > len(lines):
        return None
    words = re.findall(r"[A-Za-z_]+", lines[error.line - 1][: error.column - 1])
    return words[-1] if words else None


# One token of SQL as the position a message points at is read: a comment, a quoted
# string or name, a word or number, else one character.
_TOKEN = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\w+|\S", re.DOTALL)


def _offset(sql: str, line: int, column: int) -> int | None:
    lines = sql.split("\n")
    if not 1 <= line <= len(lines) or not 1 <= column <= len(lines[line - 1]) + 1:
        return None
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


def within(sql: str, line: int, column: int) -> bool:
    """Whether ``line``, ``column`` is a position in ``sql`` (or just after a line's end)."""
    return _offset(sql, line, column) is not None


def _same(token: str, other: str) -> bool:
    quoted = token[:1] in ("'", '"')
    return token == other if quoted else token.lower() == other.lower()


def placed_in(written: str, ran: str, line: int, column: int) -> tuple[int, int] | None:
    """Where the token a message points at (``line``, ``column`` of ``ran``, the SQL an
    engine ran after rewriting ``written``: table names made warehouse paths, keywords
    and spacing normalised) stands in ``written``: the same token, after as many of its
    kind. None when ``written`` has no such token (it is one the rewriting made)."""
    offset = _offset(ran, line, column)
    if offset is None:
        return None
    tokens = list(_TOKEN.finditer(ran))
    pointed = next((t for t in tokens if t.start() <= offset < t.end()), None)
    if pointed is None:
        return None
    text = pointed.group(0)
    before = sum(1 for t in tokens if t.start() < pointed.start() and _same(t.group(0), text))
    found = [t.start() for t in _TOKEN.finditer(written) if _same(t.group(0), text)]
    if before >= len(found):
        return None
    start = found[before]
    preceding = written[:start]
    return preceding.count("\n") + 1, start - (preceding.rfind("\n") + 1) + 1
