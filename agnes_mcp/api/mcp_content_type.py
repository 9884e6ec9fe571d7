"""A POST to ``/mcp`` whose body is not said to be JSON is refused as JSON-RPC says.

MCP's streamable HTTP transport carries JSON-RPC messages as ``application/json``. The MCP
SDK's transport security answered any other ``Content-Type`` (``curl -d``'s
``application/x-www-form-urlencoded``, ``text/plain``, none) ``400`` with the bare text
"Invalid Content-Type header", with no type of its own: the one answer of the endpoint
that is no JSON-RPC error, which a client's JSON-RPC layer cannot read. Here it is
answered ``415 Unsupported Media Type`` (what the SDK's transport itself answers) with a
JSON-RPC error naming the header to send, and the request's id when the body has one.
"""

from __future__ import annotations

import json

from mcp_types import INVALID_REQUEST
from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_body
from agnes_mcp.api.jsonrpc_invalid import id_of
from agnes_mcp.api.mcp_post import read_post

CONTENT_TYPE = b"content-type"
MESSAGE = (
    "Unsupported Media Type: a POST to the MCP endpoint carries JSON-RPC as "
    "'Content-Type: application/json' (it was {given})."
)


def _is_json(content_type: bytes | None) -> bool:
    return content_type is not None and content_type.split(b";")[0].strip().lower() == (
        b"application/json"
    )


class JsonContentType:
    """Wraps the MCP app: a POST not typed ``application/json`` is answered ``415``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = dict(scope.get("headers", [])).get(CONTENT_TYPE)
        if scope["type"] != "http" or scope["method"] != "POST" or _is_json(given):
            await self.app(scope, receive, send)
            return
        post, _ = await read_post(scope, receive)
        said = f"'{given.decode('latin-1')[:60]}'" if given is not None else "not given"
        error = {"code": INVALID_REQUEST, "message": MESSAGE.format(given=said)}
        answer = {"jsonrpc": "2.0", "id": id_of(post.message), "error": error}
        await send_body(send, 415, json.dumps(answer).encode(), "application/json")
