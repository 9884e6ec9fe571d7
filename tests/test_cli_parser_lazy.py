"""``agnes`` builds the ``admin`` commands' parsers only when the command line names
``admin`` (they are most of the tree); every other command parses as before, and the
whole tree (the contract and docs tests walk it) is there when no argv is given."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cli.main import build_parser


def _admin_areas(parser: argparse.ArgumentParser) -> set[str]:
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    admin = commands.choices["admin"]
    found = [a for a in admin._actions if isinstance(a, argparse._SubParsersAction)]
    return set(found[0].choices) if found else set()


def test_the_admin_tree_only_for_admin() -> None:
    full = _admin_areas(build_parser())
    assert {"user", "token", "group", "grant", "sync"} <= full
    assert _admin_areas(build_parser(["admin", "user", "list"])) == full
    assert _admin_areas(build_parser(["--json", "admin"])) == full
    assert _admin_areas(build_parser(["pull", "--quiet"])) == set()
    assert _admin_areas(build_parser([])) == set()


@pytest.mark.parametrize(
    "argv",
    [
        ["pull", "--jobs", "3", "--quiet"],
        ["query", "SELECT 1", "--format", "csv"],
        ["admin", "user", "list"],
        ["whoami", "--json"],
    ],
)
def test_the_same_arguments_either_way(argv: list[str]) -> None:
    assert vars(build_parser(argv).parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    ("argv", "command", "meant"),
    [
        (["query", "--limt", "3", "SELECT 1"], "agnes query", "--limit"),
        (["catalog", "--serch", "x"], "agnes catalog", "--search"),
        (["admin", "user", "list", "--jsn"], "agnes admin user list", "--json"),
        (["catalog", "orders"], "agnes catalog", None),
    ],
)
def test_an_unknown_word_is_refused_by_its_command(
    argv: list[str], command: str, meant: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt option was reported by `agnes` itself, under `agnes`'s usage line, as
    the other usage errors of a command are not: now by the command, with the option
    that is close."""
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith(f"usage: {command} ") and f"\n{command}: error: unrecognized" in err
    assert (f"(did you mean {meant}?)" in err) if meant else "did you mean" not in err


def test_sync_history_limit_is_bounded_where_it_is_typed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--limit 1001 went to the server, which refused it in the API's words
    ("Invalid request: limit: Input should be less than or equal to 1000")."""
    argv = ["admin", "sync-history", "--limit", "1001"]
    with pytest.raises(SystemExit) as exited:
        build_parser(argv).parse_args(argv)
    assert exited.value.code == 2
    assert "argument --limit: must be from 1 to 1,000, not 1,001" in capsys.readouterr().err
    assert build_parser(argv).parse_args([*argv[:-1], "1000"]).limit == 1000


@pytest.mark.parametrize("scale", ["0", "-1", "101", "nan", "lots"])
def test_a_demo_scale_it_cannot_make_is_a_usage_error(
    scale: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agnes demo --scale 0` printed the generator's traceback (ValueError: scale must be
    in (0, 100])."""
    with pytest.raises(SystemExit) as exited:
        build_parser(["demo"]).parse_args(["demo", "--scale", scale])
    assert exited.value.code == 2 and "argument --scale: " in capsys.readouterr().err
    assert build_parser(["demo"]).parse_args(["demo", "--scale", "0.01"]).scale == 0.01


@pytest.mark.parametrize("command", ["serve", "demo"])
@pytest.mark.parametrize(
    ("port", "said"),
    [
        ("99999", "from 0 (any free) to 65535"),
        ("-1", "not -1"),
        ("http", "'http' is not a port number"),
    ],
)
def test_a_port_that_is_none_is_a_usage_error(
    command: str, port: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agnes serve --port 99999` was refused only once the command ran, in the settings'
    validation words ("key 'port' = 99999: Input should be less than or equal to 65535")
    and a hint to fix a key of a configuration file."""
    with pytest.raises(SystemExit) as exited:
        build_parser([command]).parse_args([command, "--port", port])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "argument --port: " in err and said in err, err
    assert build_parser([command]).parse_args([command, "--port", "0"]).port == 0


def test_pull_jobs_past_the_bound_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`agnes pull --jobs 1000` was accepted: a thousand connections to one server."""
    from cli.analyst_parsers import MAX_PULL_JOBS

    with pytest.raises(SystemExit) as exited:
        build_parser(["pull"]).parse_args(["pull", "--jobs", str(MAX_PULL_JOBS + 1)])
    assert (
        exited.value.code == 2 and "argument --jobs: must be from 1 to" in capsys.readouterr().err
    )
    assert (
        build_parser(["pull"]).parse_args(["pull", "--jobs", str(MAX_PULL_JOBS)]).jobs
        == MAX_PULL_JOBS
    )


def test_a_snapshot_lifetime_past_ten_years_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--ttl 1e308` overflowed into a traceback (OverflowError) on the way to seconds."""
    from agnes_sync.snapshot_files import MAX_TTL_SECONDS
    from cli.analyst_parsers import MAX_TTL_HOURS

    assert MAX_TTL_HOURS * 3600 == MAX_TTL_SECONDS
    argv = ["snapshot", "create", "t", "--select", "a", "--as", "n", "--ttl"]
    with pytest.raises(SystemExit) as exited:
        build_parser(argv).parse_args([*argv, "1e308"])
    assert exited.value.code == 2 and "at most 87,840 hours" in capsys.readouterr().err
    assert build_parser(argv).parse_args([*argv, "87840"]).ttl == 87840


@pytest.mark.parametrize(
    ("argv", "choices"),
    [
        (["snapshot"], "ACTION (one of: create, list, drop, refresh, prune)"),
        (["admin", "user"], "ACTION (one of: add, list, deactivate, activate)"),
        (["admin"], "AREA (one of: user, token, "),
    ],
)
def test_a_missing_action_is_named_among_its_choices(
    argv: list[str], choices: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agnes snapshot` said only "the following arguments are required: ACTION"."""
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and f"the following arguments are required: {choices}" in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["snapshot", "create", "orders", "--selct", "a", "--as", "b"],
            "required: --select (--selct: did you mean --select?)",
        ),
        (["snapshot", "create", "orders", "--slect=a"], "(--slect: did you mean --select?)"),
        (["snapshot", "create", "orders", "--as", "b"], "required: --select\n"),  # none typed
    ],
)
def test_a_misspelt_required_option_is_named_with_the_one_meant(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse reports a missing required option before the unknown words, so
    `--selct a` was refused as '--select' being required, the word typed unmentioned."""
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and said in err, err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["init", "--server-url", "http://127.0.0.1:9", "--token", ""], "--token"),
        (["whoami", "--server-url", " "], "--server-url"),
        (["query", "SELECT 1", "--workspace="], "--workspace"),
        (["login", "--token", "t", "--workspace", ""], "--workspace"),
    ],
)
def test_an_empty_token_url_or_workspace_is_a_usage_error(
    argv: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty --token (a script's unset variable) was taken as none given: `agnes init
    --token ""` wired the workspace with the user's saved default token, whoever's it
    was; an empty --server-url or --workspace likewise fell back to others. Each is
    refused before anything is read or written."""
    from cli.main import main

    if argv[0] == "init":
        argv = [*argv, "--workspace", str(tmp_path / "ws")]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and f"argument {flag}: is empty" in err, err
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    ("argv", "meant"),
    [
        (["snapshto", "list"], "'snapshot'"),
        (["admin", "usr", "list"], "'user'"),
        (["query", "--format", "cvs", "SELECT 1"], "'csv'"),
        (["metrics", "query", "a/b", "--grain", "mnth"], "'month'"),
        (["zzzz"], None),
    ],
)
def test_a_misspelt_command_or_choice_is_named_with_the_one_meant(
    argv: list[str], meant: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt command or choice was refused with the whole list of choices and no
    hint which was meant, unlike a misspelt option (did you mean --limit?)."""
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "invalid choice" in err
    assert (f"(did you mean {meant}?)" in err) if meant else "did you mean" not in err
