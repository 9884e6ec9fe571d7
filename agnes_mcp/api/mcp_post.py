"""A ``/mcp`` POST's body, read once and parsed once for every layer in front of the MCP
app.

The layers that look into a POST (:mod:`.jsonrpc_invalid`, :mod:`.mcp_request_ids`,
:mod:`.mcp_hang_up`, :mod:`.mcp_batches`, and the refusals of :mod:`.mcp_versions`,
:mod:`.mcp_content_type`, :mod:`.mcp_session_versions`) each read the whole body again
from the ``receive`` the layer above had wrapped, and parsed it as JSON: three reads and
three parses of an ordinary call. Here the first layer to ask reads it and keeps it in the
ASGI scope (the messages it came in are replayed to the app behind, unchanged), and its
JSON is parsed at the first ask, once. A POST made here (a message of a batch, the cancel
of a call whose client hung up) carries its own body in its own scope (:func:`posting`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope

from agnes_mcp.api.request_body import replaying, whole_body

SCOPE_KEY = "agnes.mcp_post"
NOT_JSON: Any = object()  # what :attr:`McpPost.message` is for a body that is not JSON
_UNPARSED: Any = object()


class McpPost:
    """The body of one POST, its JSON (parsed when first asked for), and whether the
    client hung up before the body was whole."""

    __slots__ = ("_message", "body", "hung_up")

    def __init__(self, body: bytes, hung_up: bool = False) -> None:
        self.body = body
        self.hung_up = hung_up
        self._message: Any = _UNPARSED

    @property
    def message(self) -> Any:
        """The body's JSON value, or :data:`NOT_JSON`."""
        if self._message is _UNPARSED:
            try:
                self._message = json.loads(self.body)
            except ValueError:
                self._message = NOT_JSON
        return self._message


async def read_post(scope: Scope, receive: Receive) -> tuple[McpPost, Receive]:
    """The POST's body (read here when no layer above has read it) and the ``receive`` to
    hand on: the body's messages again, then what the client sends next."""
    known = scope.get(SCOPE_KEY)
    if isinstance(known, McpPost):
        return known, receive
    body, messages = await whole_body(receive)
    post = McpPost(body, hung_up=messages[-1]["type"] == "http.disconnect")
    scope[SCOPE_KEY] = post
    return post, replaying(messages, receive)


def posting(scope: Scope, body: bytes) -> Scope:
    """The scope of a POST of ``body`` made here with the headers of ``scope`` (its
    credential and session), its own ``Content-Length`` and its own body."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return {**scope, "headers": headers, SCOPE_KEY: McpPost(body)}
