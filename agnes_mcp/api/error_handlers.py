"""Every exception a route can raise, mapped to ``{"error": {code, message, hint}}`` here only.

Unexpected exceptions become a 500 with an incident id; their text and stack
trace go to the server log, never to the client.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from agnes_mcp.api.error_shapes import API_SHAPE, shape_for
from agnes_mcp.errors import (
    AuthenticationError,
    HTTPStatusError,
    InternalError,
    InvalidRequest,
    MalformedJSON,
    MethodNotAllowed,
    RouteNotFound,
)
from agnes_sync.errors import AgnesError

logger = logging.getLogger("agnes.api")


def error_response(
    error: AgnesError, extra: Mapping[str, str] | None = None, scope: Scope | None = None
) -> JSONResponse:
    """The JSON answer for ``error``, with ``extra`` headers (a 405's ``Allow``), in the
    shape of the request's path when ``scope`` is given (:mod:`.error_shapes`)."""
    shape = API_SHAPE if scope is None else shape_for(scope)
    headers: dict[str, str] = {**shape.headers, **(extra or {})}
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{error.code}"'
        )
    wait = error.details.get("retry_after_seconds")
    if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > 0:
        # A refusal that clears by itself (too_many_queries, budget_exhausted) says when.
        headers["Retry-After"] = str(math.ceil(wait))
    return JSONResponse(shape.render(error), status_code=error.status, headers=headers or None)


def validation_error(exc: RequestValidationError) -> AgnesError:
    """Malformed JSON → 400; anything else (missing, unknown, wrong type) → 422 naming fields."""
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            loc = tuple(err.get("loc", ()))
            ctx = err.get("ctx") or {}
            position = f" at position {loc[-1]}" if len(loc) > 1 else ""
            reason = ctx.get("error", "invalid JSON")
            return MalformedJSON(f"The request body is not valid JSON{position}: {reason}.")
    return InvalidRequest.of_fields(exc.errors())


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AgnesError)
    async def _agnes(request: Request, exc: AgnesError) -> JSONResponse:
        return error_response(exc, scope=request.scope)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc), scope=request.scope)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error: AgnesError
        if exc.status_code == 404:
            error = RouteNotFound(f"No route {request.method} {request.url.path}.")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
        elif exc.status_code == 400 and "parsing the body" in str(exc.detail):
            error = MalformedJSON(
                "The request body could not be read as JSON (not UTF-8, or nested too deeply)."
            )
        else:
            error = HTTPStatusError(exc.status_code, str(exc.detail))
        allow = (exc.headers or {}).get("Allow") if exc.status_code == 405 else None
        return error_response(error, {"Allow": allow} if allow else None, request.scope)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = secrets.token_hex(6)
        logger.error(
            "unexpected error %s on %s %s", incident, request.method, request.url.path, exc_info=exc
        )
        failure = InternalError(f"An unexpected error occurred (incident {incident}).")
        return error_response(failure, scope=request.scope)
