"""``--format json`` is ``--json``, for answers and refusals alike, on every command that
has both flags; ``--json`` with another ``--format`` is a usage error naming both."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import exit_codes
from cli.main import build_parser
from tests.cli_harness import run


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from leaves(child, (*path, name))
    if parser.get_default("handler"):
        yield path, parser


def with_format() -> list[tuple[str, ...]]:
    """Every command with both ``--json`` and ``--format``."""
    found = []
    for path, parser in leaves(build_parser(["admin"])):
        flags = {o for a in parser._actions for o in a.option_strings}
        if {"--json", "--format"} <= flags:
            found.append(path)
    return found


# A refusal each of them gives in the pulled analyst workspace.
REFUSED = {
    ("query",): ("SELECT * FROM ordrs",),
    ("metrics", "query"): ("revenue/no_such_metric",),
}


def test_every_command_with_a_format_is_covered_here() -> None:
    assert sorted(with_format()) == sorted(REFUSED)


@pytest.mark.parametrize("command", sorted(REFUSED), ids=" ".join)
def test_format_json_refusals_are_json_as_with_the_json_flag(
    workspace: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    argv = (*command, *REFUSED[command])
    flagged = run(capsys, *argv, "--json")
    formatted = run(capsys, *argv, "--format", "json")
    assert formatted == flagged  # exit code, stdout and stderr alike
    code, out, err = formatted
    assert code == exit_codes.FAILURE and err == ""
    assert json.loads(out)["error"]["code"] in {"table_not_found", "metric_not_found"}
    code, out, err = run(capsys, *argv, "--format", "table")
    assert code == exit_codes.FAILURE and out == "" and err.startswith("error: ")


@pytest.mark.parametrize("command", sorted(REFUSED), ids=" ".join)
@pytest.mark.parametrize(
    "flags",
    [
        ("--json", "--format", "csv"),
        ("--format", "table", "--json"),
        ("--format=csv", "--json"),
        ("--json", "--format", "json", "--format", "table"),
    ],
    ids=" ".join,
)
def test_json_with_another_format_is_a_usage_error_naming_both(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...], flags: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run(capsys, *command, *REFUSED[command], *flags)
    assert exited.value.code == exit_codes.USAGE
    err = capsys.readouterr().err
    assert "--json conflicts with --format " in err and err.startswith("usage: agnes ")


@pytest.mark.parametrize("command", sorted(REFUSED), ids=" ".join)
@pytest.mark.parametrize(
    "flags",
    [("--json", "--format", "json"), ("--format", "json", "--json"), ("--format", "json")],
    ids=" ".join,
)
def test_json_said_twice_is_json(command: tuple[str, ...], flags: tuple[str, ...]) -> None:
    args = build_parser().parse_args([*command, *REFUSED[command], *flags])
    assert args.json is True and args.format == "json"


def test_agnes_mcp_offers_no_json_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`agnes mcp --json` was accepted and did nothing (stdout carries the protocol, there
    is no result to print): an option that does nothing is not offered."""
    with pytest.raises(SystemExit) as stopped:
        run(capsys, "mcp", "--json")
    assert stopped.value.code == exit_codes.USAGE
    assert "unrecognized arguments: --json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("--show", "revenue/total_revenue", "--mode", "local"), "--mode does not apply"),
        (("--show", "revenue/total_revenue", "--search", "x", "--metrics"), "--search and"),
        (("--metrics", "--mode", "remote"), "metrics have none"),
    ],
)
def test_catalog_options_it_would_ignore_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: tuple[str, ...], said: str
) -> None:
    """`agnes catalog --show ID` ignored --search, --mode and --metrics, and `--metrics`
    ignored --mode: each answered as if the option had not been given."""
    code, out, err = run(capsys, "catalog", *argv, "--workspace", str(tmp_path))
    assert code == exit_codes.USAGE and out == "" and said in err


def test_a_snapshot_estimate_refuses_a_name_and_lifetime_it_would_ignore(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`agnes snapshot create T --estimate --as s --ttl 2` printed the estimate and took
    nothing: the name and lifetime were accepted and ignored."""
    argv = ["snapshot", "create", "web_sessions", "--select", "device", "--estimate"]
    code, out, err = run(capsys, *argv, "--as", "s", "--ttl", "2", "--workspace", str(tmp_path))
    assert code == exit_codes.USAGE and out == "" and "--as and --ttl would do nothing" in err
