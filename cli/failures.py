"""Turning any failure into one clear message and an exit code (never a stack trace)."""

from __future__ import annotations

import argparse
import sys

from cli import exit_codes
from cli.output import print_json, printable


def _say(code: str, message: str, hint: str | None, as_json: bool) -> None:
    if as_json:
        print_json({"error": {"code": code, "message": message, "hint": hint}})
        return
    sys.stderr.write(f"error: {printable(message)}\n")
    if hint:
        sys.stderr.write(f"hint: {printable(hint)}\n")


def report(exc: BaseException, as_json: bool) -> int:
    from agnes_sync.credentials import CredentialsError
    from agnes_sync.server_api import NotAgnesServer, ServerError, ServerUnreachable

    if isinstance(exc, argparse.ArgumentTypeError):
        _say("usage", str(exc), "See --help.", as_json)
        return exit_codes.USAGE
    if isinstance(exc, OSError) and exc.filename:
        _say("file_unreadable", f"{exc.filename}: {exc.strerror}", None, as_json)
        return exit_codes.FAILURE
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        return exit_codes.INTERRUPTED
    if isinstance(exc, ServerError):
        problems = exc.details.get("problems")
        if problems and not as_json:
            for problem in problems:
                where = problem.get("file") or ""
                if problem.get("line"):
                    where += f", line {problem['line']}"
                key = f"{problem['key']}: " if problem.get("key") else ""
                sys.stderr.write(printable(f"{where}: {key}{problem['message']}") + "\n")
        _say(exc.code, exc.message, exc.hint, as_json)
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

    from agnes_mcp.errors import ConfigError
    from agnes_sync.errors import AgnesError

    if isinstance(exc, ConfigError):
        _say(exc.code, exc.message, exc.hint, as_json)
        return exit_codes.CONFIG
    if isinstance(exc, AgnesError):
        _say(exc.code, exc.message, exc.hint, as_json)
        return exit_codes.FAILURE
    raise exc
