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

Connections cost a file descriptor each, shared with DuckDB, git and the store, and uvicorn
itself neither limits them nor times out a request's head: 20,000 connections that never
finished their headers held every descriptor of a demo server, and queries failed with
"Too many open files". So here (:class:`_Admission`, one per server) a request's head must
arrive within ``HEAD_SECONDS`` of the connection (or of the last answer on it), one
address may hold at most ``max_connections_per_client`` connections (a setting, default
``PER_CLIENT``; a trusted proxy's are not counted:
it speaks for many clients, and limits them itself), and the server as a whole keeps
``RESERVED_FDS`` descriptors of its limit free. A connection past a limit is answered
``503 too_many_connections`` and closed at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import resource
from collections import Counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SMALL_BYTES = 64 * 1024  # writes that together stay under this wait for the loop to turn
HEAD_SECONDS = 10.0  # a request's line and headers must arrive within this
PER_CLIENT = 256  # open connections one address may hold, unless the settings say otherwise
RESERVED_FDS = 1024  # descriptors kept for everything but connections
PER_CLIENT_ATTRIBUTE = "agnes_connections_per_client"  # set on uvicorn's Config by serve


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


def _busy(message: str) -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": "too_many_connections",
                "message": message,
                "hint": "Close idle connections, or retry in a few seconds.",
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"retry-after: 5\r\nconnection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Admission:
    """One server's open connections, by client address."""

    def __init__(self, trusted: list[str] | str, per_client: int | None = None) -> None:
        self.per_client = per_client
        entries = trusted.split(",") if isinstance(trusted, str) else trusted
        self._trusted = [
            ipaddress.ip_network(e.strip(), strict=False)
            for e in entries
            if e.strip() and e.strip() != "*"
        ]
        self._everyone_trusted = any(e.strip() == "*" for e in entries)
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        infinite = soft == resource.RLIM_INFINITY
        self.total_limit = 1 << 20 if infinite else max(64, soft - RESERVED_FDS)
        self.by_client: Counter[str] = Counter()
        self.total = 0

    def _counted(self, host: str) -> bool:
        if self._everyone_trusted:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return True  # a unix socket's peer or odd name: counted under it
        return not any(address in network for network in self._trusted)

    def admit(self, host: str) -> str | None:
        """Count a new connection from ``host``; None, or why it is refused."""
        if self.total >= self.total_limit:
            return "The server holds as many connections as it may; it refuses more for now."
        limit = self.per_client or PER_CLIENT
        if self._counted(host) and self.by_client[host] >= limit:
            return f"Your address holds {limit} open connections already."
        self.total += 1
        if self._counted(host):
            self.by_client[host] += 1
        return None

    def release(self, host: str) -> None:
        self.total -= 1
        if self._counted(host):
            self.by_client[host] -= 1
            if self.by_client[host] <= 0:
                del self.by_client[host]


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, with the head's
    timeout and the connection limits of :class:`_Admission`."""

    _admitted: str | None = None  # the client address counted, until released
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(self._coalescing)
        admission = getattr(self.server_state, "agnes_admission", None)
        if admission is None:
            admission = _Admission(
                self.config.forwarded_allow_ips, getattr(self.config, PER_CLIENT_ATTRIBUTE, None)
            )
            self.server_state.agnes_admission = admission  # type: ignore[attr-defined]
        host = self.client[0] if self.client else ""
        refused = admission.admit(host)
        if refused is not None:
            self._coalescing.write(_busy(refused))
            self._coalescing.close()
            return
        self._admitted = host
        self._expect_head()

    def _expect_head(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._expect_head()  # the next request on this connection has as long

    def _release(self) -> None:
        self._cancel_head_timer()
        if self._admitted is not None:
            self.server_state.agnes_admission.release(self._admitted)  # type: ignore[attr-defined]
            self._admitted = None

    def handle_websocket_upgrade(self) -> None:
        self._release()  # the websocket protocol owns the connection from here
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        # The client sent its last byte (a half-close): asyncio closes the socket's own
        # transport right after this returns, so what waits here goes first.
        self._coalescing.flush()
        super().eof_received()
