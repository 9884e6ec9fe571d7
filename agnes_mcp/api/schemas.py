"""Base for request bodies: unknown fields are refused, naming the field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Deleted(BaseModel):
    deleted: str
