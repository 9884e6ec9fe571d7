"""The CLI's words for the MCP tools a refusal names.

A refusal is written once, for both fronts: its hint speaks to an agent ("use the catalog
tool", "drop it first (snapshot_drop)"). Printed by the CLI for a person, each tool is
named by the command they would type instead (`agnes catalog`, `agnes snapshot drop`).
The server's text is not changed: ``--json`` prints it as it came, with its
``next_step`` (the tool call and the CLI line).

Text in single quotes is the caller's own (a table or metric name) and is never
translated.
"""

from __future__ import annotations

import re

CLI_FOR_TOOL: dict[str, str] = {
    "catalog": "agnes catalog",
    "schema": "agnes schema",
    "describe": "agnes describe",
    "query": "agnes query",
    "query_remote": "agnes query --remote",
    "snapshot_create": "agnes snapshot create",
    "snapshot_estimate": "agnes snapshot create --estimate",
    "snapshot_list": "agnes snapshot list",
    "snapshot_drop": "agnes snapshot drop",
    "metrics_list": "agnes metrics list",
    "metric_show": "agnes metrics show",
    "metric_query": "agnes metrics query",
    "disk_info": "agnes disk-info",
    "session_export": "agnes notebook export",
    "whoami": "agnes whoami",
}


def _alternatives(names: list[str]) -> str:
    return "|".join(sorted(map(re.escape, names), key=len, reverse=True))


_NAMES = _alternatives(list(CLI_FOR_TOOL))
# Only names no English word spells may stand alone (snapshot_drop; not "query"), and
# never in a path (/api/whoami, /api/snapshot_list).
_OWN_NAMES = _alternatives([n for n in CLI_FOR_TOOL if "_" in n])
_TOOL_WORDS = re.compile(
    # "the catalog tool", "the schema and describe tools"
    rf"\bthe (?P<listed>(?:{_NAMES})(?:(?:, | and | or )(?:{_NAMES}))*) tools?\b"
    # "snapshot_drop", "`metrics_list`"
    rf"|`?(?<![/.\w-])(?P<named>{_OWN_NAMES})\b(?!/)`?"
)
_NAME = re.compile(rf"\b({_NAMES})\b")
_QUOTED = re.compile(r"((?<![A-Za-z])'[^'\n]*'(?![A-Za-z]))")


def _command(name: str) -> str:
    return f"`{CLI_FOR_TOOL[name]}`"


def _said(match: re.Match[str]) -> str:
    if match.group("named"):
        return _command(match.group("named"))
    return _NAME.sub(lambda m: _command(m.group(1)), match.group("listed"))


def cli_words(text: str) -> str:
    """``text`` with each MCP tool it names given as the CLI command instead."""
    parts = _QUOTED.split(text)
    for i in range(0, len(parts), 2):  # the odd parts are quoted: the caller's own words
        parts[i] = _TOOL_WORDS.sub(_said, parts[i])
    return "".join(parts)
