"""Base for request bodies: unknown fields are refused, naming the field."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _plain(value: str) -> str:
    """Refuse control and invisible formatting characters (terminal escapes, bidi overrides)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf") and char not in "\t":
            raise ValueError(f"contains the control character U+{ord(char):04X}")
    return value


PlainText = Annotated[str, AfterValidator(_plain)]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Deleted(BaseModel):
    deleted: str
