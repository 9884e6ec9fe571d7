"""Reading BigQuery's answers the same way everywhere: an error's reason and its own
one-line message, and a schema field's type as BigQuery writes it."""

from __future__ import annotations

import re
from typing import Any

# The request line google-api-core puts before the API's message ("400 POST https://...: ")
_REQUEST_LINE = re.compile(r"^(?:\d{3} )?[A-Z]+ https?://\S+: ")


# Reasons BigQuery's error table says to retry later (rateLimitExceeded and quotaExceeded
# come as 403s, the job* ones as 400s: the HTTP class alone does not tell).
RETRY_LATER = frozenset(
    {
        "backendError",
        "internalError",
        "badGateway",
        "rateLimitExceeded",
        "quotaExceeded",
        "jobBackendError",
        "jobInternalError",
        "jobRateLimitExceeded",
        "tableUnavailable",
    }
)
_RETRY_LATER_STATUS = frozenset({429, 500, 502, 503, 504})


def cause(exc: Any) -> Any:
    """The error BigQuery answered: a retry that ran out of time (``RetryError``, maybe
    around another one: a job's retries around its calls') holds the last one."""
    from google.api_core import exceptions

    while isinstance(exc, exceptions.RetryError) and exc.cause is not None:
        exc = exc.cause
    return exc


def reason(exc: Any) -> str | None:
    """The first error's ``reason`` (``bytesBilledLimitExceeded``, ``invalidQuery``, ...),
    whatever exception class the client library made of it (a job's ``errorResult`` with a
    reason it does not know becomes a 500)."""
    errors = getattr(cause(exc), "errors", None) or []
    return errors[0].get("reason") if errors and isinstance(errors[0], dict) else None


def message(exc: Any) -> str:
    """The API's own one-line message, never the request line ("POST https://...: ")."""
    exc = cause(exc)
    said = _unreadable_answer(exc)
    if said is not None:
        return said
    errors = getattr(exc, "errors", None) or []
    said = errors[0].get("message") if errors and isinstance(errors[0], dict) else None
    lines = str(said or getattr(exc, "message", None) or exc).splitlines() or [""]
    return _REQUEST_LINE.sub("", lines[0])[:500] or type(exc).__name__


def retry_later(exc: Any) -> bool:
    """Whether BigQuery said (by reason, else by status) that the same call may work later;
    a network failure or a retry that ran out of time too. An error body need not carry a
    reason (a proxy's 502), so the status decides then."""
    said = reason(exc)
    if said is not None:
        return said in RETRY_LATER
    if _unreadable_answer(cause(exc)) is not None:
        return True  # a proxy's page or a broken answer: nothing the caller can change
    last = cause(exc)
    if last is not exc:
        return True  # the library retried it until its deadline: only retryable errors are
    return getattr(exc, "code", None) in _RETRY_LATER_STATUS or _network(exc)


def from_bigquery(exc: BaseException) -> bool:
    """An answer of BigQuery's API, or a failure to reach it (not a local error: a full
    disk is an ``OSError`` too)."""
    from google.api_core import exceptions

    return (
        isinstance(exc, exceptions.GoogleAPIError)
        or _network(exc)
        or _unreadable_answer(exc) is not None
    )


# What the client library raises from its own code when a 200 is not the resource the API
# documents (it reads fields by key: a missing one is a KeyError).
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _unreadable_answer(exc: BaseException) -> str | None:
    """Why an answer could not be read, when ``exc`` says the API's answer was not what it
    documents: not JSON (a proxy's or a sign-in page), or JSON without the resource's
    fields (the library's own KeyError). None for anything else (our own bugs included:
    only an error raised inside the client library, below our last call into it, counts)."""
    import requests

    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return "its answer could not be read: it is not JSON (a proxy's or a sign-in page?)"
    if not isinstance(exc, _SHAPE_ERRORS) or not _raised_in_library(exc):
        return None
    missing = f": {str(exc.args[0])[:200]}" if isinstance(exc, KeyError) and exc.args else ""
    return f"its answer could not be read: it is not shaped as the API documents{missing}"


def _raised_in_library(exc: BaseException) -> bool:
    """Whether ``exc`` was raised in Google's client packages, below the last frame of
    ours."""
    library = False
    frame = exc.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if module.startswith("google."):
            library = True
        elif module.startswith(("connectors.", "agnes_")):
            library = False
        frame = frame.tb_next
    return library


def _network(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.RequestException)


def credentials_refused(exc: BaseException) -> bool:
    """A failure of the credentials themselves (``google.auth``): a revoked or malformed
    key, no default credentials, the token endpoint unreachable."""
    from google.auth import exceptions

    return isinstance(exc, exceptions.GoogleAuthError)


def column_type(field: Any) -> str:
    """A schema field's type as BigQuery writes it: ``ARRAY<STRING>`` for a repeated
    field, ``STRUCT<a INT64, b ARRAY<STRUCT<...>>>`` for a record, with its sub-fields."""
    kind = str(field.field_type)
    if kind in ("RECORD", "STRUCT"):
        inner = ", ".join(f"{sub.name} {column_type(sub)}" for sub in field.fields or ())
        kind = f"STRUCT<{inner}>"
    return f"ARRAY<{kind}>" if field.mode == "REPEATED" else kind
