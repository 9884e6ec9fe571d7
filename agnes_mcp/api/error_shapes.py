"""Which shape an error answer takes on a path: the API's ``{"error": {code, message,
hint}}`` everywhere, unless a protocol with its own shape registered the path.

OAuth clients read ``/token``, ``/register`` and ``/revoke`` errors as RFC 6749 section
5.2 has them (``{"error": "invalid_request", "error_description": ...}``): an ``error``
that is an object, sent by a layer before the OAuth handler (a body over the size limit,
a disallowed Host, a form of too many fields, a wrong method), broke them. Every writer of
an error answer (the exception handlers and the raw ASGI middleware) asks here, so a
registered path gets its protocol's shape whatever layer refused the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from agnes_sync.errors import AgnesError

Render = Callable[[AgnesError], dict[str, Any]]
STATE_ATTRIBUTE = "error_shapes"


def api_shape(error: AgnesError) -> dict[str, Any]:
    return {"error": error.to_dict()}


@dataclass(frozen=True)
class ErrorShape:
    render: Render
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with every such answer


API_SHAPE = ErrorShape(api_shape)


class ErrorShapes:
    """The shapes registered by path (exact paths: a protocol's endpoints), one per app."""

    def __init__(self) -> None:
        self._by_path: dict[str, ErrorShape] = {}

    def register(self, paths: Iterable[str], shape: ErrorShape) -> None:
        for path in paths:
            self._by_path[path] = shape

    def for_path(self, path: str) -> ErrorShape:
        return self._by_path.get(path, API_SHAPE)


def shape_for(scope: Scope) -> ErrorShape:
    """The shape of an error answer to the request of ``scope`` (the API's, unless the
    app serving it registered the path)."""
    app = scope.get("app")
    shapes = getattr(getattr(app, "state", None), STATE_ATTRIBUTE, None)
    if not isinstance(shapes, ErrorShapes):
        return API_SHAPE
    return shapes.for_path(str(scope.get("path", "")))


def error_shapes_of(app: Any) -> ErrorShapes:
    """The app's registry (made on first use)."""
    shapes = getattr(app.state, STATE_ATTRIBUTE, None)
    if not isinstance(shapes, ErrorShapes):
        shapes = ErrorShapes()
        setattr(app.state, STATE_ATTRIBUTE, shapes)
    return shapes
