"""Refusals name MCP tools ("use the catalog tool", "drop it first (snapshot_drop)"): they
are written once, for an agent. Printed for a person, each tool is named by what that
person types instead: a command in the CLI (:mod:`cli.tool_words`), a call of the
notebook API in a notebook (:mod:`agnes_mcp.notebook.refusal`).

Text in single quotes is the caller's own (a table or metric name) and is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Every MCP tool (tests/contract/mcp_tools.json lists them).
TOOLS = (
    "catalog",
    "schema",
    "describe",
    "query",
    "query_remote",
    "snapshot_create",
    "snapshot_estimate",
    "snapshot_list",
    "snapshot_drop",
    "metrics_list",
    "metric_show",
    "metric_query",
    "disk_info",
    "session_export",
    "whoami",
)


def _alternatives(names: list[str]) -> str:
    return "|".join(sorted(map(re.escape, names), key=len, reverse=True))


_NAMES = _alternatives(list(TOOLS))
# Only names no English word spells may stand alone (snapshot_drop; not "query"), and
# never in a path (/api/whoami, /api/snapshot_list).
_OWN_NAMES = _alternatives([n for n in TOOLS if "_" in n])
_TOOL_WORDS = re.compile(
    # "the catalog tool", "the schema and describe tools"
    rf"\bthe (?P<listed>(?:{_NAMES})(?:(?:, | and | or )(?:{_NAMES}))*) tools?\b"
    # "snapshot_drop", "`metrics_list`"
    rf"|`?(?<![/.\w-])(?P<named>{_OWN_NAMES})\b(?!/)`?"
)
_NAME = re.compile(rf"\b({_NAMES})\b")
_QUOTED = re.compile(r"((?<![A-Za-z])'[^'\n]*'(?![A-Za-z]))")


def spoken(text: str, words: Mapping[str, str]) -> str:
    """``text`` with each MCP tool it names given as ``words[tool]`` (in backquotes); a
    tool ``words`` lacks keeps its name."""

    def said(name: str) -> str:
        return f"`{words[name]}`" if name in words else name

    def replace(match: re.Match[str]) -> str:
        if match.group("named"):
            return said(match.group("named"))
        if not all(name in words for name in _NAME.findall(match.group("listed"))):
            return match.group(0)
        return _NAME.sub(lambda m: said(m.group(1)), match.group("listed"))

    parts = _QUOTED.split(text)
    for i in range(0, len(parts), 2):  # the odd parts are quoted: the caller's own words
        parts[i] = _TOOL_WORDS.sub(replace, parts[i])
    return "".join(parts)
