"""Holding a small answer whole to rewrite its body before it is sent (a fresh
``Content-Length`` with it): the admin pages' script nonce, the MCP endpoint's JSON-RPC
error. Answers ``start`` does not hold pass on as they come, streamed."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message, Send


def rewriting_body(
    send: Send,
    start: Callable[[Message], tuple[Message, bool]],
    rewrite: Callable[[bytes], bytes],
) -> Send:
    """``send`` with each answer's ``http.response.start`` passed through ``start``: the
    start to send instead, and whether to hold the body whole for ``rewrite``."""
    held: Message | None = None
    parts: list[bytes] = []

    async def sending(message: Message) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            message, whole = start(message)
            if whole:
                held = message
                return
        elif held is not None and message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = rewrite(b"".join(parts))
            kept = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
            await send({**held, "headers": [*kept, (b"content-length", b"%d" % len(body))]})
            message = {"type": "http.response.body", "body": body}
        await send(message)

    return sending
