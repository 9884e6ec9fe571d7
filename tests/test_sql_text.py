"""The body of one statement, ready to wrap: what ends it goes, what is inside it stays."""

from __future__ import annotations

import pytest

from agnes_sync.sql_text import statement_body


@pytest.mark.parametrize(
    ("sql", "body"),
    [
        ("SELECT 1", "SELECT 1"),
        ("  SELECT 1 ;  ", "SELECT 1"),
        ("SELECT 1;;", "SELECT 1"),
        ("SELECT 1 ; -- trailing\n", "SELECT 1"),
        ("SELECT 1; /* c */ ;", "SELECT 1"),
        ("SELECT 1 -- c\n;", "SELECT 1 -- c"),  # the caller starts a new line after it
        ("SELECT ';' AS s", "SELECT ';' AS s"),  # inside a string
        ("SELECT $$;$$ AS s;", "SELECT $$;$$ AS s"),  # inside a dollar-quoted string
        ("SELECT 1 /* ; */", "SELECT 1 /* ; */"),  # inside a comment
        ("SELECT 1 -- ;", "SELECT 1 -- ;"),
    ],
)
def test_statement_body(sql: str, body: str) -> None:
    assert statement_body(sql) == body
