"""Reading a request's whole body in raw ASGI middleware, keeping the messages it came in
so the app behind gets them unchanged."""

from __future__ import annotations

from starlette.types import Message, Receive


async def whole_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The request body and the messages it came in (to hand on unchanged)."""
    messages: list[Message] = []
    parts: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts), messages


def replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` giving ``messages`` first (those :func:`whole_body` read), then what
    ``receive`` gives (the client's ``http.disconnect``)."""

    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


def body_once(body: bytes) -> Receive:
    """A ``receive`` for a request made here (not by a client): ``body`` whole, then the
    end of the exchange."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
