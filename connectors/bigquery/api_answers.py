"""Reading BigQuery's answers the same way everywhere: an error's reason and its own
one-line message, and a schema field's type as BigQuery writes it."""

from __future__ import annotations

import re
from typing import Any

# The request line google-api-core puts before the API's message ("400 POST https://...: ")
_REQUEST_LINE = re.compile(r"^(?:\d{3} )?[A-Z]+ https?://\S+: ")


def reason(exc: Any) -> str | None:
    """The first error's ``reason`` (``bytesBilledLimitExceeded``, ``invalidQuery``, ...),
    whatever exception class the client library made of it (a job's ``errorResult`` with a
    reason it does not know becomes a 500)."""
    errors = getattr(exc, "errors", None) or []
    return errors[0].get("reason") if errors and isinstance(errors[0], dict) else None


def message(exc: Any) -> str:
    """The API's own one-line message, never the request line ("POST https://...: ")."""
    errors = getattr(exc, "errors", None) or []
    said = errors[0].get("message") if errors and isinstance(errors[0], dict) else None
    text = str(said or getattr(exc, "message", None) or exc).splitlines()[0]
    return _REQUEST_LINE.sub("", text)[:500]


def column_type(field: Any) -> str:
    """A schema field's type as BigQuery writes it: ``ARRAY<STRING>`` for a repeated
    field, ``STRUCT<a INT64, b ARRAY<STRUCT<...>>>`` for a record, with its sub-fields."""
    kind = str(field.field_type)
    if kind in ("RECORD", "STRUCT"):
        inner = ", ".join(f"{sub.name} {column_type(sub)}" for sub in field.fields or ())
        kind = f"STRUCT<{inner}>"
    return f"ARRAY<{kind}>" if field.mode == "REPEATED" else kind
