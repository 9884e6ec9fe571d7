"""The CLI's words for the MCP tools a refusal names.

A refusal is written once, for both fronts: its hint speaks to an agent ("use the catalog
tool", "drop it first (snapshot_drop)"). Printed by the CLI for a person, each tool is
named by the command they would type instead (`agnes catalog`, `agnes snapshot drop`).
The server's text is not changed: ``--json`` prints it as it came, with its
``next_step`` (the tool call and the CLI line).

Text in single quotes is the caller's own (a table or metric name) and is never
translated (:mod:`agnes_mcp.tool_words`).
"""

from __future__ import annotations

from agnes_mcp.tool_words import spoken

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


def cli_words(text: str) -> str:
    """``text`` with each MCP tool it names given as the CLI command instead."""
    return spoken(text, CLI_FOR_TOOL)
