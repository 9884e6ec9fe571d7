"""Keboola's JSON answers checked for the shape the Storage API documents before they are read.

A ``200`` is not always the answer asked for: a proxy's or a load balancer's JSON page, an
``{"error": ...}`` body sent with ``200``, or an object where a list belongs. Read as the
API documents, such an answer failed with Python's own ``KeyError`` or ``TypeError``; here
it is a :class:`MalformedAnswer` naming the call and what came instead (Keboola's ``error``
text when the body has one), worth another try as an answer that is not JSON is.
"""

from __future__ import annotations

from typing import Any

from agnes_sync.errors import TransientSyncError


class MalformedAnswer(TransientSyncError):
    """Keboola answered a call with JSON of another shape than the API documents."""

    code = "source_answer_malformed"


def an_object(answer: Any, what: str, *, needs: tuple[str, ...] = ()) -> dict[str, Any]:
    """``answer`` as a JSON object holding every key of ``needs``."""
    if isinstance(answer, dict) and all(answer.get(key) is not None for key in needs):
        return answer
    raise _malformed(answer, what, _expected("an object", needs))


def objects(answer: Any, what: str, *, needs: tuple[str, ...] = ("id",)) -> list[dict[str, Any]]:
    """``answer`` as a JSON list of objects, each holding every key of ``needs``."""
    if isinstance(answer, list) and all(
        isinstance(item, dict) and all(item.get(key) is not None for key in needs)
        for item in answer
    ):
        return answer
    raise _malformed(answer, what, _expected("a list of objects", needs))


def texts(answer: Any, what: str) -> list[str]:
    """``answer`` as a JSON list of strings (a table's column names)."""
    if isinstance(answer, list) and all(isinstance(item, str) for item in answer):
        return answer
    raise _malformed(answer, what, "a list of names")


def _expected(kind: str, needs: tuple[str, ...]) -> str:
    return f"{kind} with {', '.join(repr(k) for k in needs)}" if needs else kind


def _malformed(answer: Any, what: str, expected: str) -> MalformedAnswer:
    return MalformedAnswer(
        f"Keboola answered {what} with {_described(answer)}, not {expected}.",
        hint="A proxy or load balancer in front of the stack may have answered; the sync "
        "is retried later. Check the source's url option if it keeps failing.",
    )


def _described(answer: Any) -> str:
    if isinstance(answer, dict):
        said = answer.get("error") or answer.get("message")
        if said:
            return f"an error ({(str(said).strip().splitlines() or [''])[0][:200]})"
        keys = ", ".join(repr(str(k))[:40] for k in list(answer)[:5])
        return f"an object ({keys})" if keys else "an empty object"
    if isinstance(answer, list):
        return f"a list of {len(answer)}" if answer else "an empty list"
    if isinstance(answer, str):
        return "a string"
    if answer is None or isinstance(answer, bool):
        return "null" if answer is None else str(answer).lower()
    return "a number"
