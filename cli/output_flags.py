"""``--json`` and ``--format``: one choice of output, however it is spelled.

``--format json`` is ``--json`` (``args.json`` is set by either, so results and errors
alike come as JSON); ``--json`` with ``--format table`` or ``--format csv`` asks for two
outputs at once and is a usage error (exit 2) naming both flags, in either order.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

FORMAT_GIVEN = "format_given"  # the --format the command line gave (None: none)
JSON_GIVEN = "json_given"  # --json was given


def _conflict(parser: argparse.ArgumentParser, form: str) -> None:
    parser.error(
        f"--json conflicts with --format {form}: give one of them (--json is --format json)"
    )


class JsonFlag(argparse.Action):
    """``--json``: print JSON (results and errors)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = getattr(namespace, FORMAT_GIVEN, None)
        if given not in (None, "json"):
            _conflict(parser, given)
        setattr(namespace, self.dest, True)
        setattr(namespace, JSON_GIVEN, True)


class FormatChoice(argparse.Action):
    """``--format table|json|csv``; ``json`` sets ``args.json`` too."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        form = str(values)
        if getattr(namespace, JSON_GIVEN, False) and form != "json":
            _conflict(parser, form)
        setattr(namespace, self.dest, form)
        setattr(namespace, FORMAT_GIVEN, form)
        namespace.json = form == "json"


def add_format(parser: argparse.ArgumentParser, help_text: str) -> None:
    """A ``--format table|json|csv`` flag beside the shared ``--json``."""
    parser.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        action=FormatChoice,
        help=f"{help_text}; json is --json",
    )
