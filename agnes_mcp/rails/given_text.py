"""What a caller gave, said back in a refusal as JSON spells it.

The callers of the tools and of the MCP methods send JSON: a refusal that quoted their
value as Python writes it (``(given True)``, ``(given None)``, ``(given 'a,b')``,
``{'table'}``) named a value they never sent. Every refusal that says what was given
(a tool's ``invalid_arguments``, a request's invalid params, a prompt's missing
arguments) says it with :func:`given_text`, and the problems with :func:`problems_said`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

# How much of a given value a refusal quotes.
GIVEN_CHARS = 80
# pydantic's errors that list the values allowed, each quoted as Python does ('local')
LISTING_ALLOWED = frozenset({"literal_error", "enum"})
_PYTHON_QUOTED = re.compile(r"'([^'\\]*)'")


def given_text(value: object) -> str:
    """``value`` as JSON spells it (``true``, ``null``, ``"a,b"``, ``{"a": 1}``), cut at
    :data:`GIVEN_CHARS` characters; what JSON cannot spell (a Python object given to a
    notebook call) as its ``repr``."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except ValueError:  # a structure that holds itself
        text = repr(value)
    return text if len(text) <= GIVEN_CHARS else text[:GIVEN_CHARS] + "…"


def validation_problems(
    exc: ValidationError, name_key: str, whole: str, skip: str | None = None
) -> list[dict[str, str]]:
    """Each problem pydantic found: where (under ``name_key``: ``"argument"``, ``"param"``;
    ``whole`` when it is the whole input), the problem, and what was given (unless it was
    missing). ``skip`` is a first location part that names nothing to the caller (the SDK
    validates a request under ``params``)."""
    problems = []
    for error in _unions_as_one(exc.errors(include_url=False)):
        loc = list(error["loc"])
        if skip is not None and loc[:1] == [skip]:
            loc = loc[1:]
        where = ".".join(str(part) for part in loc) or whole
        problem = {name_key: where, "problem": _problem_text(error["type"], error["msg"])}
        if not error["type"].startswith("missing"):
            problem["given"] = given_text(error.get("input"))
        problems.append(problem)
    return problems


def _unions_as_one(errors: list[Any]) -> list[Any]:
    """``errors`` with the errors of one value that matched no member of a union made
    one: pydantic gives one per member, each located under the member's type tag
    (``filters.channel.constrained-str``, ``filters.channel.int``, ...), which names no
    argument. Such errors come one after another, at the same place but for the last
    part, about the very same value, each of another type."""
    merged: list[Any] = []
    i = 0
    while i < len(errors):
        j = i + 1
        loc = tuple(errors[i]["loc"])
        while (
            j < len(errors)
            and len(loc) > 1
            and tuple(errors[j]["loc"])[:-1] == loc[:-1]
            and len(errors[j]["loc"]) == len(loc)
            and errors[j].get("input") is errors[i].get("input")
        ):
            j += 1
        group = errors[i:j]
        if len(group) > 1 and len({e["type"] for e in group}) == len(group):
            wanted = [str(e["msg"]).removeprefix("Input should be ") for e in group]
            said = ", ".join(wanted[:-1]) + " or " + wanted[-1]
            merged.append(
                {
                    "loc": loc[:-1],
                    "type": "union_error",
                    "msg": f"Input should be {said}",
                    "input": group[0].get("input"),
                }
            )
        else:
            merged.extend(group)
        i = j
    return merged


def _problem_text(kind: str, message: str) -> str:
    """pydantic's ``message``, with the values it lists as allowed quoted as JSON
    (``"local", "remote"``, where pydantic writes ``'local', 'remote'``)."""
    if kind not in LISTING_ALLOWED:
        return message
    return _PYTHON_QUOTED.sub(lambda found: json.dumps(found.group(1)), message)


def problems_said(problems: list[dict[str, Any]], name_key: str) -> str:
    """The problems as one line: ``name: problem (given value); ...``."""
    return "; ".join(
        f"{p[name_key]}: {p['problem']}" + (f" (given {p['given']})" if "given" in p else "")
        for p in problems
    )
