"""Turning any failure into one clear message and an exit code (never a stack trace)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from cli import exit_codes
from cli.output import print_json, printable
from cli.tool_words import cli_words

if TYPE_CHECKING:
    from agnes_sync.server_api import ServerError


def _say(
    code: str,
    message: str,
    hint: str | None,
    as_json: bool,
    next_step: dict[str, Any] | None = None,
) -> None:
    """The error, its hint and, for a refusal that names one, the ready command to run
    instead (the CLI line of its ``next_step``). For people, the MCP tools the server's
    text names are given as CLI commands (:mod:`cli.tool_words`); JSON keeps the text as
    it came."""
    if as_json:
        body: dict[str, Any] = {"code": code, "message": message, "hint": hint}
        if next_step is not None:
            body["next_step"] = next_step
        print_json({"error": body})
        return
    sys.stderr.write(f"error: {printable(cli_words(message))}\n")
    if hint:
        sys.stderr.write(f"hint: {printable(cli_words(hint))}\n")
    for command in _commands(next_step):
        sys.stderr.write(f"next: {printable(command)}\n")


def _commands(next_step: dict[str, Any] | None) -> list[str]:
    """The CLI lines of a next step: its own, or each of its options'."""
    if not next_step:
        return []
    options = next_step.get("options")
    steps: list[Any] = options if isinstance(options, list) else [next_step]
    lines = [s.get("cli") for s in steps if isinstance(s, dict)]
    return [line for line in lines if isinstance(line, str) and line]


def _next_step(exc: BaseException) -> dict[str, Any] | None:
    """The refusal's next step, from the server's answer or the local rails alike."""
    step = getattr(exc, "next_step", None)
    return step if isinstance(step, dict) else None


def _problem_line(problem: object) -> str | None:
    """One problem of a refusal's ``details.problems`` on a line of its own: a metric
    file's (file, line, key, message); any other shape is left to the message."""
    if not isinstance(problem, dict) or not isinstance(problem.get("message"), str):
        return None
    where = str(problem.get("file") or "")
    if problem.get("line"):
        where += f", line {problem['line']}"
    key = f"{problem['key']}: " if problem.get("key") else ""
    return f"{where}: {key}{problem['message']}"


def _cli_hint(exc: ServerError) -> str | None:
    """The server's hint, but for a request it found invalid: that one points at the REST
    API's schema (/api/docs), which is no help to someone typing a command."""
    from agnes_mcp.errors import REQUEST_SCHEMA_HINT

    if exc.hint == REQUEST_SCHEMA_HINT:
        return "Fix the value named above; the command's --help says what each argument takes."
    return exc.hint


def read_text_file(path: str) -> str:
    """The text of the file a command was given (``--query @daily.sql``): one not in
    UTF-8 (saved as Latin-1) raised UnicodeDecodeError, a traceback naming no file; it is
    refused as an unreadable file, naming it and the byte."""
    import errno
    from pathlib import Path

    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        said = f"not UTF-8 text (the byte 0x{data[exc.start]:02X} at byte {exc.start + 1:,})"
        raise OSError(errno.EILSEQ, said, path) from None


def _file_hint(exc: OSError) -> str:
    """What to do about a file a command was given (``--query @file.sql``, ``-o FILE``)."""
    import errno
    from pathlib import Path

    if exc.errno == errno.ENOENT:
        return f"Check the path; a relative one starts at the current folder ({Path.cwd()})."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "This account may not use it: check its permissions, or name another file."
    if exc.errno == errno.EISDIR:
        return "It is a folder: name a file."
    if exc.errno == errno.EILSEQ:
        return "Save it as UTF-8 text, or convert it (iconv -t utf-8 FILE > NEW)."
    return "Check the path, or name another file."


def _duckdb_saw_ctrl_c(exc: BaseException) -> bool:
    """DuckDB working on this (main) thread stops for Ctrl-C itself and raises it as
    ``RuntimeError: Query interrupted`` (``agnes demo`` generating its data, a pull
    rebuilding its views): Ctrl-C all the same, not a traceback."""
    if not isinstance(exc, RuntimeError):
        return False
    from agnes_mcp.rails.sandbox import interrupted_by_user

    return interrupted_by_user(exc)


def report(exc: BaseException, as_json: bool) -> int:
    from agnes_sync.credentials import CredentialsError
    from agnes_sync.server_api import NotAgnesServer, ServerError, ServerUnreachable

    if isinstance(exc, argparse.ArgumentTypeError):
        _say("usage", str(exc), "See --help.", as_json)
        return exit_codes.USAGE
    if isinstance(exc, OSError) and exc.filename:
        _say("file_unreadable", f"{exc.filename}: {exc.strerror}", _file_hint(exc), as_json)
        return exit_codes.FAILURE
    if isinstance(exc, KeyboardInterrupt) or _duckdb_saw_ctrl_c(exc):
        sys.stderr.write("interrupted\n")
        return exit_codes.INTERRUPTED
    if isinstance(exc, ServerError):
        message = exc.message
        problems = exc.details.get("problems")
        if isinstance(problems, list) and problems and not as_json:
            said = [line for line in map(_problem_line, problems) if line]
            for line in said:
                sys.stderr.write(printable(line) + "\n")
            head, sep, _ = message.partition(": ")
            if said and sep and head[:1].isdigit():  # "3 problems in ...: a; b; c" again
                message = f"{head} (listed above)."
        _say(
            exc.code, message, _cli_hint(exc) if not as_json else exc.hint, as_json, _next_step(exc)
        )
        if exc.status in (401, 403):
            return exit_codes.AUTH
        return exit_codes.FAILURE
    if isinstance(exc, ServerUnreachable):
        _say(exc.code, exc.message, exc.hint, as_json)
        return exit_codes.UNREACHABLE
    if isinstance(exc, NotAgnesServer):
        _say(exc.code, exc.message, exc.hint, as_json)
        return exit_codes.CONFIG
    if isinstance(exc, CredentialsError):
        _say(
            "credentials_invalid",
            str(exc),
            "Fix the flag, AGNES_* variable or credentials file.",
            as_json,
        )
        return exit_codes.CONFIG

    from pydantic import ValidationError

    from agnes_mcp.errors import ConfigError
    from agnes_mcp.rails.refusals import InvalidArguments, invalid_arguments
    from agnes_sync.errors import AgnesError
    from agnes_sync.workspace.layout import NoWorkspace

    if isinstance(exc, ValidationError):  # a value the command's own models refused
        exc = invalid_arguments("arguments", exc)
    if isinstance(exc, InvalidArguments):
        _say(exc.code, exc.message, "See --help.", as_json)
        return exit_codes.USAGE
    if isinstance(exc, (ConfigError, NoWorkspace)):
        _say(exc.code, exc.message, exc.hint, as_json)
        return exit_codes.CONFIG
    if isinstance(exc, AgnesError):  # the server's refusal relayed, or the local rails'
        _say(exc.code, exc.message, exc.hint, as_json, _next_step(exc))
        return exit_codes.AUTH if exc.status in (401, 403) else exit_codes.FAILURE
    raise exc
