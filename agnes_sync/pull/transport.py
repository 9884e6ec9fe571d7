"""How a pull talks to the server (the manifest, the files, the catalog it keeps): over
the standard library's ``http.client``, reading a file straight into one reused buffer
per thread (:class:`Wire`), or through the API client's httpx (:class:`ApiTransport`,
for a proxy, and for callers that hold only a ``ServerApi``).

Why two: on the reference machine (2 cores shared with the server, loopback, 1 GB in 50
files) httpx spends ~0.6 s of CPU a gigabyte on its HTTP machinery (an event and a new
``bytes`` object per 64 KiB read), ``http.client.readinto`` ~0.2 s, and at wire speed the
CPU is the limit; importing httpx costs a pull ~50 ms more. The requests, the bytes and
the errors are the same either way.

A chunk is a view of the reused buffer: it is valid until the next one is asked for
(write and hash it, don't keep it).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import sys
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

from agnes_sync.errors import AgnesError
from agnes_sync.server_api import (
    ServerTimeout,
    ServerUnreachable,
    error_of,
    not_agnes,
    unreachable,
)

if TYPE_CHECKING:
    import ssl

    import httpx

    from agnes_sync.server_api import ServerApi

# Bytes per read, measured on the reference machine (2 cores, 1 GB, loopback): 32 KiB
# costs the least CPU; each doubling above it costs ~30% more kernel time a byte (the
# buffer no longer stays in the core's cache from the read to the write and the hash),
# and smaller reads cost more Python per byte.
BUFFER = 32 << 10
ERROR_BODY = 1 << 20  # an error's body read at most (it is a small JSON)


class Body(Protocol):
    """A download's answer: status, headers (any case) and the body's chunks."""

    status: int

    def header(self, name: str) -> str | None: ...
    def chunks(self) -> Iterator[bytes | memoryview]: ...


class PullTransport(Protocol):
    """An answer of 400 or more raises the server's error, a broken connection
    ServerUnreachable (also while a body's chunks are read)."""

    def get_text_if_changed(self, path: str, etag: str | None) -> tuple[str | None, str | None]:
        """GET with ``If-None-Match``: ``(None, etag)`` on 304, else ``(body, new ETag)``."""
        ...

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON answer."""
        ...

    def open(
        self, path: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> AbstractContextManager[Body]:
        """GET a file, to read in chunks."""
        ...


class _HttpxBody:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    def chunks(self) -> Iterator[bytes]:
        return self._response.iter_raw()


class ApiTransport:
    """Through the API client's httpx (which speaks to proxies)."""

    def __init__(self, api: ServerApi) -> None:
        self._api = api

    def get_text_if_changed(self, path: str, etag: str | None) -> tuple[str | None, str | None]:
        return self._api.get_text_if_changed(path, etag)

    def get(self, path: str, **params: Any) -> Any:
        return self._api.get(path, **params)

    @contextmanager
    def open(
        self, path: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> Iterator[Body]:
        with self._api.stream("GET", path, params=params, headers=headers) as response:
            yield _HttpxBody(response)


class _WireBody:
    def __init__(self, wire: Wire, response: http.client.HTTPResponse) -> None:
        self._wire = wire
        self._response = response
        self.status = response.status

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    def chunks(self) -> Iterator[memoryview]:
        buffer = self._wire.buffer()
        view = memoryview(buffer)
        read = self._response.readinto
        with self._wire.blocking_reads(self._response):
            while True:
                try:
                    count = read(buffer)
                except (OSError, http.client.HTTPException) as exc:
                    raise self._wire.broken(exc) from None
                if count is None:  # the kernel's read timeout passed with nothing to read
                    raise self._wire.broken(TimeoutError("timed out"))
                if not count:
                    return
                yield view[:count]


class Wire:
    """GETs over ``http.client``, one kept-alive connection and one buffer per thread."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = {**headers, "Accept-Encoding": "identity"}
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()
        self._context: ssl.SSLContext | None = None

    def buffer(self) -> bytearray:
        buffer: bytearray | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(BUFFER)
        return buffer

    @contextmanager
    def blocking_reads(self, response: http.client.HTTPResponse) -> Iterator[None]:
        """While ``response``'s body is read (plain HTTP on Linux, a body of known length):
        the socket blocks and the kernel keeps the timeout (``SO_RCVTIMEO``; a read that
        waits longer returns nothing). Python's own timeout polls the socket before every
        read: one more system call each 32 KiB, ~8% of a loopback pull's time (measured:
        1.14 s vs 1.23 s a GB). A chunked body keeps Python's timeout (http.client reads
        its framing with calls that do not expect an empty read)."""
        sock = self._socket()
        plain = not self._https and sys.platform.startswith("linux")
        if sock is None or not plain or response.chunked or response.length is None:
            yield
            return
        seconds = max(self._timeout, 0.001)
        whole = int(seconds)
        timeval = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        except OSError:  # a platform whose timeval this is not: Python's timeout it is
            yield
            return
        sock.settimeout(None)
        try:
            yield
        finally:
            self._python_timeout()

    def _socket(self) -> socket.socket | None:
        """This thread's connected socket, if it has one."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        return connection.sock if connection is not None else None

    def _python_timeout(self) -> None:
        """This thread's socket back on Python's timeout (after a body read blocking)."""
        sock = self._socket()
        if sock is not None and sock.gettimeout() != self._timeout:
            with contextlib.suppress(OSError):  # closed meanwhile by close()
                sock.settimeout(self._timeout)

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._tls()
                )
            else:
                connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            self._local.connection = connection
            with self._lock:
                self._open.add(connection)
        return connection

    def _tls(self) -> ssl.SSLContext:
        """The very checks httpx makes (its CA bundle, SSL_CERT_FILE/SSL_CERT_DIR)."""
        with self._lock:
            if self._context is None:
                import httpx

                self._context = httpx.create_ssl_context()
            return self._context

    def _drop(self) -> None:
        """Close this thread's connection (broken, or its body left unread)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            connection.close()
            with self._lock:
                self._open.discard(connection)

    def broken(self, exc: BaseException) -> ServerUnreachable:
        """What a failed exchange means: the server stopped sending on a connection it
        had accepted (the client's timeout), or the connection could not be made or
        broke."""
        connected = self._socket() is not None
        self._drop()
        if isinstance(exc, TimeoutError) and connected:
            return ServerTimeout(
                f"The Agnes server at {self.base_url} sent nothing for {self._timeout:g} s "
                "(the client's timeout).",
                hint="Run 'agnes pull' again when the server answers: it resumes where it "
                "stopped, and the previous files stay in use meanwhile.",
            )
        reason = str(exc).rstrip(".") or type(exc).__name__
        return unreachable(f"The connection to {self.base_url} failed: {reason}.", self.base_url)

    def _send(self, target: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        """The answer's head; a kept-alive connection the server closed meanwhile is
        opened again once (a GET is safe to repeat)."""
        while True:
            connection = self._connection()
            reused = connection.sock is not None
            try:
                connection.request("GET", target, headers=headers)
                return connection.getresponse()
            except (ConnectionError, http.client.BadStatusLine) as exc:
                if not reused:
                    raise self.broken(exc) from None
                self._drop()
            except (OSError, http.client.HTTPException) as exc:
                raise self.broken(exc) from None

    def _as_httpx(
        self, response: http.client.HTTPResponse, content: bytes, target: str
    ) -> httpx.Response:
        """The answer as the API client's error helpers read it (errors only)."""
        import httpx

        return httpx.Response(
            response.status,
            headers=response.getheaders(),
            content=content,
            request=httpx.Request("GET", self.base_url + target.removeprefix(self._prefix)),
        )

    def _error(self, response: http.client.HTTPResponse, target: str) -> AgnesError:
        try:
            content = response.read(ERROR_BODY)
        except (OSError, http.client.HTTPException) as exc:
            return self.broken(exc)
        return error_of(self._as_httpx(response, content, target), self.base_url)

    @contextmanager
    def _answer(
        self, path: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> Iterator[tuple[http.client.HTTPResponse, str]]:
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        response = self._send(target, {**self._headers, **headers})
        try:
            if response.status >= 400:
                raise self._error(response, target)
            yield response, target
        finally:
            if not response.isclosed():  # a body left unread: the connection can't go on
                self._drop()
            else:  # read whole, its reader perhaps not finished: never left blocking
                self._python_timeout()

    def _read(
        self, path: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes, str]:
        with self._answer(path, params, headers) as (response, target):
            try:
                return response, response.read(), target
            except (OSError, http.client.HTTPException) as exc:
                raise self.broken(exc) from None

    def get_text_if_changed(self, path: str, etag: str | None) -> tuple[str | None, str | None]:
        headers = {"If-None-Match": f'"{etag}"'} if etag else {}
        response, body, _ = self._read(path, None, headers)
        tag = response.getheader("etag")
        tag = tag.removeprefix("W/").strip('"') if tag else None
        if response.status == 304:
            return None, tag or etag
        return body.decode("utf-8", errors="replace"), tag

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: str(v) for k, v in params.items() if v is not None}
        response, body, target = self._read(path, clean or None, {})
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError:
            answer = self._as_httpx(response, body, target)
            raise not_agnes(answer, self.base_url, "JSON") from None

    @contextmanager
    def open(
        self, path: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> Iterator[Body]:
        with self._answer(path, params, headers) as (response, _):
            yield _WireBody(self, response)

    def close(self) -> None:
        with self._lock:
            for connection in self._open:
                connection.close()
            self._open.clear()


def wire_for(server_url: str, token: str | None, *, agent: str, timeout: float) -> Wire | None:
    """A :class:`Wire` to ``server_url``, or None when the environment names a proxy for
    it (``http.client`` does not speak to proxies: the API client's httpx does)."""
    scheme = urlsplit(server_url).scheme
    proxies = urllib.request.getproxies()
    if scheme not in ("http", "https") or proxies.get(scheme) or proxies.get("all"):
        return None
    headers = {"User-Agent": agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Wire(server_url, headers, timeout)
