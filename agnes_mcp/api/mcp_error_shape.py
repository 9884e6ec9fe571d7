"""The ``/mcp`` endpoint's refusals made before the MCP app reads a message are JSON-RPC.

A layer in front of the MCP app refuses some requests itself: a body over
``max_request_bytes`` (413), one that does not arrive in time (408), a ``Content-Length``
that is no number (400), a Host or Origin not allowed (421, 403). On ``/mcp`` these came
in the REST API's ``{"error": {"code": "payload_too_large", ...}}``, which no JSON-RPC
layer reads (its ``error.code`` is no integer). Here the path is registered with a shape
(:mod:`.error_shapes`) that answers them as JSON-RPC errors: ``-32600``, ``"id": null``
(the body was not read, or not whole), the message, and the API's error object in
``data`` (its code and hint). The gate's refusals of the caller (401 with its
``WWW-Authenticate`` challenge, 405 with ``Allow``) keep the API's shape, as documented:
an MCP client reads the status and the header there, not a JSON-RPC answer.

The MCP SDK bounds a body on its own too, at 4 MiB, and refused one between that and
``max_request_bytes`` with the plain text "Request body too large" (no type at all): one
limit holds on ``/mcp``, the app's, and the SDK's second read of every body is dropped
(:func:`one_body_limit`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from mcp_types import INVALID_REQUEST

from agnes_mcp.api.error_shapes import ErrorShape, api_shape, error_shapes_of
from agnes_mcp.errors import AuthenticationError, MethodNotAllowed
from agnes_sync.errors import AgnesError

CALLER_REFUSALS = (AuthenticationError, MethodNotAllowed)  # the gate's: the API's shape


def jsonrpc_refusal(error: AgnesError) -> dict[str, Any]:
    """``error`` as a JSON-RPC error answering a request whose id was not read."""
    if isinstance(error, CALLER_REFUSALS):
        return api_shape(error)
    said = error.to_dict()
    error_object = {"code": INVALID_REQUEST, "message": said["message"], "data": said}
    return {"jsonrpc": "2.0", "id": None, "error": error_object}


MCP_ERROR_SHAPE = ErrorShape(jsonrpc_refusal)


def install_mcp_error_shape(app: FastAPI, path: str) -> None:
    """Answer the refusals of the layers before the MCP app at ``path`` as JSON-RPC."""
    mount = path.rstrip("/")
    error_shapes_of(app).register((mount, mount + "/"), MCP_ERROR_SHAPE)


def one_body_limit(session_manager: Any) -> None:
    """Drop the SDK's own bound on a body (4 MiB, answered in plain text) from its session
    manager: the app's body limit, in front of ``/mcp``, bounds every body already."""
    from mcp.server.transport_security import RequestBodyLimitMiddleware

    bounded = getattr(session_manager, "asgi_app", None)
    if isinstance(bounded, RequestBodyLimitMiddleware):
        session_manager.asgi_app = bounded.app
