"""The CLI's contract: every command's ``--help`` is committed in ``tests/contract/cli_help.txt``,
every handler a command names exists, and the table flags cover exactly the table spec.

A changed command, flag or help text fails here until the snapshot is updated on purpose:

    UPDATE_CLI_CONTRACT=1 uv run pytest tests/test_cli_contract.py
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.api.routes.registry import TableUpdate
from agnes_sync.connector import SPEC_FIELD, TableRequest
from agnes_sync.table_spec import PartitionGranularity, QueryMode, SyncStrategy, TableSpec
from cli.main import build_parser
from cli.table_flags import FIELDS_WITHOUT_FLAG, SPEC_FLAGS, add_spec_flags, spec_body

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "contract" / "cli_help.txt"
COLUMNS = 100
# argparse's layout changes between Python versions (3.13 writes "-o, --output OUTPUT"), so
# the project pins the interpreter (.python-version) and the snapshot names the one it was
# rendered by: on another, the test fails saying so rather than skipping.
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
HEADER = (
    "# The --help of every agnes command, rendered by Python {python}'s argparse at "
    "COLUMNS={columns}.\n"
    "# Update it on purpose: UPDATE_CLI_CONTRACT=1 uv run pytest tests/test_cli_contract.py\n"
)


def commands(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ("agnes",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser in the tree, parents before their subcommands, in the order they are listed."""
    yield words, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*words, name))


def is_leaf(parser: argparse.ArgumentParser) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def render_help() -> str:
    parts = [HEADER.format(python=PYTHON, columns=COLUMNS)]
    for words, parser in commands(build_parser()):
        parts.append(f"\n$ {' '.join(words)} --help\n{parser.format_help()}")
    return "".join(parts)


def test_every_help_matches_the_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(COLUMNS))  # argparse wraps at the terminal's width
    text = render_help()
    if os.environ.get("UPDATE_CLI_CONTRACT") == "1":
        SNAPSHOT.write_text(text, encoding="utf-8")
    committed = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    rendered_by, _, committed_help = committed.partition("\n")
    difference = "".join(
        difflib.unified_diff(
            committed_help.splitlines(keepends=True),
            text.partition("\n")[2].splitlines(keepends=True),
            "tests/contract/cli_help.txt",
            "now",
        )
    )
    assert f"Python {PYTHON}'s" in rendered_by, (
        f"The snapshot was rendered by another Python ({rendered_by.lstrip('# ')}); this is "
        f"Python {PYTHON}: run the tests with the pinned interpreter (.python-version)."
    )
    assert not difference, (
        "The CLI's --help changed. Review the difference, then update the snapshot with "
        f"UPDATE_CLI_CONTRACT=1 uv run pytest tests/test_cli_contract.py\n{difference}"
    )


def test_the_snapshot_holds_every_command() -> None:
    committed = SNAPSHOT.read_text(encoding="utf-8")
    listed = [line[2:] for line in committed.splitlines() if line.startswith("$ ")]
    walked = [" ".join(words) + " --help" for words, _ in commands(build_parser())]
    assert listed == walked
    assert "agnes admin user add --help" in listed  # nested subcommands are walked
    assert len(walked) >= 50


def test_every_handler_resolves() -> None:
    """Handlers are dotted strings imported when a command runs: a renamed function fails here,
    not in front of a user."""
    seen = set()
    for words, parser in commands(build_parser()):
        handler = parser.get_default("handler")
        if not is_leaf(parser):
            assert handler is None, f"{' '.join(words)} has subcommands and a handler"
            continue
        assert isinstance(handler, str), f"{' '.join(words)} has no handler"
        module_name, sep, function_name = handler.partition(":")
        assert sep and function_name, f"{' '.join(words)}: '{handler}' is not module:function"
        function = getattr(importlib.import_module(module_name), function_name, None)
        assert callable(function), f"{' '.join(words)}: {handler} does not exist"
        seen.add(handler)
    assert len(seen) >= 40


def test_help_everywhere_loads_no_pydantic() -> None:
    """Every ``--help`` is printed from argparse alone: the table flags are not built from the
    pydantic spec."""
    code = (
        "import argparse, sys\n"
        "from cli.main import build_parser\n"
        "todo = [build_parser()]\n"
        "while todo:\n"
        "    parser = todo.pop()\n"
        "    parser.format_help()\n"
        "    for action in parser._actions:\n"
        "        if isinstance(action, argparse._SubParsersAction):\n"
        "            todo.extend(action.choices.values())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'agnes_sync'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "[]"


# --- the table spec, declared once in agnes_sync/table_spec.py -----------------------------


def spec_flag_dests(*, for_update: bool) -> set[str]:
    parser = argparse.ArgumentParser(add_help=False)
    add_spec_flags(parser, for_update=for_update)
    return {a.dest for a in parser._actions}


@pytest.mark.parametrize("for_update", [False, True])
def test_the_table_flags_cover_exactly_the_spec(for_update: bool) -> None:
    assert spec_flag_dests(for_update=for_update) == set(SPEC_FLAGS), "a flag is not in SPEC_FLAGS"
    fields = list(SPEC_FLAGS.values())
    assert len(fields) == len(set(fields)), "two flags set the same field"
    assert not set(fields) & set(FIELDS_WITHOUT_FLAG)
    assert set(fields) | set(FIELDS_WITHOUT_FLAG) == set(TableSpec.model_fields), (
        "every TableSpec field needs a flag in cli/table_flags.py (or a reason in "
        "FIELDS_WITHOUT_FLAG), and every flag a field"
    )


def test_the_flag_choices_are_the_spec_enums() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    add_spec_flags(parser, for_update=False)
    choices = {a.dest: a.choices for a in parser._actions if a.choices}
    assert choices == {
        "query_mode": [m.value for m in QueryMode],
        "sync_strategy": [s.value for s in SyncStrategy],
        "partition_granularity": [g.value for g in PartitionGranularity],
    }


FULL_COMMAND = [
    "orders",
    "--source-type", "files",
    "--bucket", "2026",
    "--source-table", "orders.csv",
    "--query-mode", "materialized",
    "--query", "SELECT 1",
    "--description", "Orders",
    "--sync-schedule", "hourly",
    "--sync-strategy", "incremental",
    "--primary-key", "id, line",
    "--incremental-column", "updated_at",
    "--incremental-window-days", "2",
    "--max-history-days", "30",
    "--where", "amount > 0",
    "--partition-by", "order_date",
    "--partition-granularity", "month",
    "--source-option", "delimiter=;",
    "--source-option", "header=true",
    "--server-only",
]  # fmt: skip


@pytest.mark.parametrize("for_update", [False, True])
def test_every_flag_reaches_its_spec_field(for_update: bool) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    add_spec_flags(parser, for_update=for_update)
    body = spec_body(parser.parse_args(FULL_COMMAND))
    assert set(body) == set(SPEC_FLAGS.values())
    spec = TableSpec.model_validate({"id": "orders", **body})
    assert spec.primary_key == ["id", "line"]
    assert spec.source_options == {"delimiter": ";", "header": True}
    assert spec.server_only is True and spec.query_mode is QueryMode.MATERIALIZED
    assert TableUpdate.model_validate(body).model_dump(exclude_unset=True) == spec.model_dump(
        include=set(body)
    )


def test_flags_left_out_are_not_sent() -> None:
    parser = argparse.ArgumentParser()
    add_spec_flags(parser, for_update=True)
    assert spec_body(parser.parse_args([])) == {}
    assert spec_body(parser.parse_args(["--no-server-only"])) == {"server_only": False}


def test_the_update_body_is_the_spec_all_optional() -> None:
    spec_fields = TableSpec.model_fields
    update_fields = TableUpdate.model_fields
    assert set(update_fields) == set(spec_fields) - {"id"}
    for name, field in update_fields.items():
        assert not field.is_required() and field.default is None, name
        assert field.description == spec_fields[name].description, name
        assert field.metadata == spec_fields[name].metadata, name  # e.g. ge=0 still holds
    assert TableUpdate.model_validate({}).model_dump(exclude_unset=True) == {}
    assert TableUpdate.model_validate({"description": "  padded "}).model_dump(
        exclude_unset=True
    ) == {"description": "padded"}  # a request body: strings are stripped
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        TableUpdate.model_validate({"incremental_window_days": -1})
    with pytest.raises(ValueError, match="Extra inputs"):
        TableUpdate.model_validate({"id": "renamed"})


def test_every_spec_field_is_described() -> None:
    for name, field in TableSpec.model_fields.items():
        assert field.description, f"TableSpec.{name} has no description"


def test_the_connector_request_is_read_from_the_spec() -> None:
    spec = TableSpec(id="t", source_type="files")
    request = TableRequest.of(spec)
    for field in dataclasses.fields(TableRequest):
        spec_field = SPEC_FIELD.get(field.name, field.name)
        assert spec_field in TableSpec.model_fields, f"TableRequest.{field.name} is not in the spec"
        if field.name != "id":
            default = field.default_factory() if callable(field.default_factory) else field.default
            assert getattr(request, field.name) == default, f"{field.name}: defaults differ"

    full = TableSpec(
        id="orders",
        source_type="files",
        description="Orders",
        bucket="2026",
        source_table="orders.csv",
        query_mode="remote",
        sync_strategy="partitioned",
        primary_key=["id"],
        incremental_column="updated_at",
        incremental_window_days=2,
        max_history_days=30,
        where_filters="amount > 0",
        partition_by="order_date",
        partition_granularity="month",
        source_options={"delimiter": ";"},
    )
    assert TableRequest.of(full) == TableRequest(
        id="orders",
        description="Orders",
        bucket="2026",
        source_table="orders.csv",
        query_mode="remote",
        sync_strategy="partitioned",
        primary_key=("id",),
        incremental_column="updated_at",
        incremental_window_days=2,
        max_history_days=30,
        where_filters="amount > 0",
        partition_by="order_date",
        partition_granularity="month",
        options={"delimiter": ";"},
    )
    assert type(TableRequest.of(full).query_mode) is str  # plain values, not the spec's enums
