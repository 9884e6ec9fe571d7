"""Base for request bodies (unknown fields are refused, naming the field), and the one
error body every route may answer."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from agnes_mcp.error_body import ErrorBody


def plain_text(value: str) -> str:
    """Refuse control and invisible formatting characters (terminal escapes, bidi overrides)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf") and char not in "\t":
            raise ValueError(f"contains the control character U+{ord(char):04X}")
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Deleted(BaseModel):
    deleted: str


# Declared on every route (the app's default responses): a client or a schema checker
# knows each status an error may come with, and its body. 422 replaces FastAPI's own
# validation model: the request's problems come as details.fields.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed request, or a refused query (the code says which)"),
        (401, "No token, or one that is invalid, expired or revoked"),
        (403, "Authenticated, but not allowed (admin only, not granted)"),
        (404, "No such route or resource"),
        (409, "Conflicts with the current state"),
        (422, "The request's fields are invalid (details.fields names them)"),
        (429, "Too many at once, or a budget spent (Retry-After says when)"),
        (503, "Not ready, or a warehouse or the server is unavailable"),
    )
}


def with_json_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with every declared error status answering
    :class:`ErrorBody` as JSON: FastAPI gives the extra responses of a route whose own
    answer is YAML, a notebook or plain text that media type, but errors are JSON."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if str(status).isdigit() and int(status) in ERROR_RESPONSES:
                    response["content"] = body
    return schema
