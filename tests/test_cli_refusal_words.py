"""A refusal the CLI prints speaks CLI: the MCP tools its hint names (written for an
agent) are given as the commands a person types; ``--json`` keeps the server's text and
its ``next_step`` as they came."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import agnes_mcp
from agnes_sync.errors import AgnesError
from cli import exit_codes
from cli.tool_words import CLI_FOR_TOOL, cli_words
from tests.cli_harness import run

CONTRACT = Path(__file__).parent / "contract" / "mcp_tools.json"
TOOL_TALK = re.compile(
    r"\b(?:" + "|".join(n for n in CLI_FOR_TOOL if "_" in n) + r")\b|\bthe [a-z_]+ tools?\b"
)


def every_error() -> list[type[AgnesError]]:
    for module in pkgutil.walk_packages(agnes_mcp.__path__, "agnes_mcp."):
        if not module.name.startswith(("agnes_mcp.admin", "agnes_mcp.notebook")):
            try:
                importlib.import_module(module.name)
            except ImportError:  # an optional extra that is not installed
                continue
    found, todo = [], [AgnesError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


def test_every_mcp_tool_has_a_cli_command() -> None:
    from agnes_mcp.tool_words import TOOLS

    tools = json.loads(CONTRACT.read_text())["tools"]
    assert set(tools) <= set(CLI_FOR_TOOL) and set(tools) == set(TOOLS)


def test_no_default_hint_names_an_mcp_tool_once_printed_by_the_cli() -> None:
    hints = {k.__name__: k.default_hint for k in every_error() if k.default_hint}
    assert any(TOOL_TALK.search(h) for h in hints.values())  # the server's text does
    said = {name: cli_words(hint) for name, hint in hints.items()}
    assert {name: text for name, text in said.items() if TOOL_TALK.search(text)} == {}
    # nor the command twice ("List snapshots with `agnes snapshot list` (agnes snapshot
    # list).", a hint that named the command beside the tool)
    twice = re.compile(r"`(agnes [^`]+)` \(`?\1`?\)")
    assert {name: text for name, text in said.items() if twice.search(text)} == {}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "Drop snapshots you no longer need (snapshot_list, snapshot_drop).",
            "Drop snapshots you no longer need (`agnes snapshot list`, `agnes snapshot drop`).",
        ),
        (
            "Use the schema and describe tools instead of DESCRIBE.",
            "Use `agnes schema` and `agnes describe` instead of DESCRIBE.",
        ),
        (
            "query_remote runs in the warehouse; query local tables with the query tool.",
            "`agnes query --remote` runs in the warehouse; query local tables with `agnes query`.",
        ),
        ("List metrics with `metrics_list`.", "List metrics with `agnes metrics list`."),
        # the caller's own words, quoted, are never changed; nor English words
        ("There is no table 'snapshot_drop'.", "There is no table 'snapshot_drop'."),
        ("the table's query_remote", "the table's `agnes query --remote`"),
        # nor a route
        ("it answered GET /api/whoami", "it answered GET /api/whoami"),
        ("GET /api/snapshot_list/x", "GET /api/snapshot_list/x"),
    ],
)
def test_cli_words(text: str, said: str) -> None:
    assert cli_words(text) == said


def test_refusals_printed_by_the_cli_name_commands(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "query", "SELECT * FROM ordrs")
    assert code == exit_codes.FAILURE
    assert "hint: Did you mean 'orders'" in err and "with `agnes catalog`." in err
    assert "next: agnes catalog\n" in err and "catalog tool" not in err
    code, _, err = run(capsys, "metrics", "show", "revenue/nope")
    assert code == exit_codes.FAILURE and "`agnes metrics list`" in err
    assert "metrics_list" not in err
    code, _, err = run(capsys, "query", "SELECT 1 AS one", "--remote")
    assert code == exit_codes.FAILURE and "hint: `agnes query --remote` runs on" in err

    take = ("snapshot", "create", "web_sessions", "--select", "session_id", "--as", "some")
    code, out, _ = run(capsys, *take, "--limit", "3")
    assert code == exit_codes.OK
    assert "truncated: it holds the first 3 rows only: --limit 3 cut it" in out
    assert "pass --limit" not in out  # it was passed: the advice is a larger one
    code, _, err = run(capsys, *take)
    assert code == exit_codes.FAILURE
    assert "snapshot_drop" not in err and "(`agnes snapshot drop`)" in err
    # JSON is the server's text as it came, with the tool call and the CLI line
    code, out, _ = run(capsys, "metrics", "show", "revenue/nope", "--json")
    error = json.loads(out)["error"]
    assert "metrics_list" in error["hint"] and error["next_step"]["tool"] == "metrics_list"
