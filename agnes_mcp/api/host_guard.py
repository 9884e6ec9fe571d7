"""DNS-rebinding and cross-site protection for every route (API, MCP, admin).

A request is served only when its ``Host`` names this server (loopback names, the
bound host, the public URL's host, or ``allowed_hosts``), and, when it carries an
``Origin`` (browsers do), the origin's host is one of those too or is listed in
``allowed_origins``. Websocket handshakes are checked the same way (browsers always send
``Origin`` on them; Bokeh's own ``websocket_origin`` check does not run under FastAPI),
and a refused one is closed before it is accepted.

Each of ``Host``, ``Origin`` and ``Authorization`` must come once: with two, what reads
the first (this server) and what reads the last (a proxy in front of it, a log) would
disagree on where the request goes, where it comes from, or who sends it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_error
from agnes_mcp.errors import HeaderRepeated, HostNotAllowed, OriginNotAllowed
from agnes_mcp.settings import AgnesSettings
from agnes_sync.errors import AgnesError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")  # noqa: S104 - names of the wildcard address
SINGLE_HEADERS = (b"host", b"origin", b"authorization")


def host_without_port(host: str) -> str:
    """The name a ``Host`` header gives, or "" for one that is not a host and port
    (``127.0.0.1:1@evil.example``: a port must be digits; no user info, path or
    whitespace)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        return name if bracket and _port_or_none(rest) else ""
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        host = name if port.isdigit() else ""
    return "" if any(c in host for c in "@/\\?# ") else host


def _port_or_none(rest: str) -> bool:
    return rest == "" or (rest.startswith(":") and rest[1:].isdigit())


def allowed_hosts_for(settings: AgnesSettings) -> tuple[str, ...]:
    hosts = list(LOOPBACK_NAMES)
    if settings.host not in WILDCARD_BINDS:
        hosts.append(settings.host.lower())
    if settings.public_url is not None and settings.public_url.host:
        hosts.append(settings.public_url.host.lower())
    hosts.extend(h.lower() for h in settings.allowed_hosts)
    return tuple(dict.fromkeys(hosts))


class HostOriginGuard:
    def __init__(self, app: ASGIApp, settings: AgnesSettings) -> None:
        self.app = app
        self.hosts = allowed_hosts_for(settings)
        self.origins = tuple(o.rstrip("/").lower() for o in settings.allowed_origins)

    def host_allowed(self, host: str) -> bool:
        name = host_without_port(host)
        return any(fnmatchcase(name, pattern) for pattern in self.hosts)

    def origin_allowed(self, origin: str) -> bool:
        if origin.rstrip("/").lower() in self.origins:
            return True
        parts = urlsplit(origin)
        return bool(parts.hostname) and self.host_allowed(parts.hostname or "")

    def _refusal(self, headers: Headers) -> AgnesError | None:
        host = headers.get("host", "")
        origin = headers.get("origin")
        if not self.host_allowed(host):
            return HostNotAllowed(f"Host '{host[:100]}' is not served here.")
        if origin == "null":
            return OriginNotAllowed("Requests from an opaque origin are refused.")
        if origin and not self.origin_allowed(origin):
            return OriginNotAllowed(f"Origin '{origin[:100]}' is not allowed.")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = _repeated(scope) or self._refusal(Headers(scope=scope))
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # Refused before the handshake is accepted: the client gets HTTP 403.
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send_error(scope, send, problem)


def _repeated(scope: Scope) -> HeaderRepeated | None:
    """The refusal for a request that sends one of :data:`SINGLE_HEADERS` twice."""
    seen: set[bytes] = set()
    for name, _ in scope.get("headers", ()):
        name = name.lower()  # ASGI servers send them lower-cased; not every test client
        if name in SINGLE_HEADERS:
            if name in seen:
                said = name.decode().title()
                return HeaderRepeated(
                    f"The request sends {said} more than once.", details={"header": said}
                )
            seen.add(name)
    return None
