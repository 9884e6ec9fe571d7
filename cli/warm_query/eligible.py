"""Which ``agnes query`` command lines the warm server may answer: a local query with
only ``--format``, ``--json``, ``--limit`` and ``--workspace`` (each spelled in full).
Anything else (``--remote``, ``--token``, ``--help``, abbreviations, ``--``) runs in
process, as before."""

from __future__ import annotations

from collections.abc import Sequence

VALUED = ("--format", "--limit", "--workspace")


class Eligible:
    __slots__ = ("argv", "form", "reads_stdin", "workspace")

    def __init__(
        self, argv: list[str], workspace: str | None, form: str, reads_stdin: bool
    ) -> None:
        self.argv = argv
        self.workspace = workspace
        self.form = form  # table, json or csv (the last --format; --json wins)
        self.reads_stdin = reads_stdin  # the SQL is '-'


def eligible(argv: Sequence[str]) -> Eligible | None:
    words = list(argv)
    if words[:1] != ["query"]:
        return None
    values: dict[str, str] = {}
    positional: list[str] = []
    as_json = False
    index = 1
    while index < len(words):
        word = words[index]
        name, sep, value = word.partition("=")
        if word == "--json":
            as_json = True
        elif name in VALUED and sep:
            values[name] = value
        elif word in VALUED:
            if index + 1 >= len(words):
                return None
            index += 1
            values[word] = words[index]
        elif word == "-" or not word.startswith("-"):
            positional.append(word)
        else:
            return None
        index += 1
    if len(positional) != 1:
        return None
    return Eligible(
        argv=words,
        workspace=values.get("--workspace"),
        form="json" if as_json else values.get("--format", "table"),
        reads_stdin=positional[0] == "-",
    )
