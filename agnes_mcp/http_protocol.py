"""uvicorn's HTTP/1.1 protocol (httptools), sending an answer's head and a small body together.

The protocol is uvicorn's httptools one: the request is parsed by llhttp (Node.js's parser,
in C), what uvicorn itself picks when httptools is installed. Its pure-Python alternative,
h11, cost an MCP ``whoami`` call 0.10-0.27 ms more on the reference VM (5-10%; ~2% of a
small query).

uvicorn writes the status line and headers, then the body, each with a send of its own:
two TCP segments per answer and, on loopback, two wake-ups of the client (~0.2 ms each on
the reference VM, a tenth of a small MCP call). Here the connection's transport joins the
small writes made in one turn of the event loop and sends them when the loop turns: a
JSON answer's head and body leave in one segment. A large write (a download's chunk) is
sent at once, after what is pending, never copied; server-sent events still leave as soon
as their writer yields, and a websocket, after the upgrade, is not held at all.

Flow control is untouched: the real transport still pauses and resumes the protocol, and
at most ``SMALL_BYTES`` wait here for the loop to turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SMALL_BYTES = 64 * 1024  # writes that together stay under this wait for the loop to turn


class CoalescingTransport(asyncio.Transport):
    """A connection's transport that holds small writes until the event loop turns."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._scheduled = False
        self._direct = False  # after an upgrade (a websocket): every write goes at once

    # --- writing -------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._direct or self._pending_bytes + len(data) > SMALL_BYTES:
            self.flush()
            self._transport.write(data)
            return
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_soon)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is pending now."""
        if self._pending:
            pending, self._pending, self._pending_bytes = self._pending, [], 0
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _flush_soon(self) -> None:
        self._scheduled = False
        self.flush()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    # --- closing -------------------------------------------------------------------------

    def close(self) -> None:
        self.flush()  # what was written before closing is sent, as the transport would
        self._transport.close()

    def abort(self) -> None:
        self._pending, self._pending_bytes = [], 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    # --- the rest, as the transport does it ----------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """An upgrade hands the connection to another protocol (a websocket's), whose end
        of stream this wrapper would not see: from here on nothing waits here."""
        self.flush()
        self._direct = True
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(self._coalescing)

    def eof_received(self) -> None:
        # The client sent its last byte (a half-close): asyncio closes the socket's own
        # transport right after this returns, so what waits here goes first.
        self._coalescing.flush()
        super().eof_received()
