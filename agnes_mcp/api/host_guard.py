"""DNS-rebinding and cross-site protection for every route (API, MCP, admin).

A request is served only when its ``Host`` names this server (loopback names, the
bound host, the public URL's host, or ``allowed_hosts``), and, when it carries an
``Origin`` (browsers do), the origin's host is one of those too or is listed in
``allowed_origins``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_error
from agnes_mcp.errors import HostNotAllowed, OriginNotAllowed
from agnes_mcp.settings import AgnesSettings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")  # noqa: S104 - names of the wildcard address


def host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.host_allowed(host):
            await send_error(send, HostNotAllowed(f"Host '{host[:100]}' is not served here."))
            return
        origin = headers.get("origin")
        if origin and origin != "null" and not self.origin_allowed(origin):
            await send_error(send, OriginNotAllowed(f"Origin '{origin[:100]}' is not allowed."))
            return
        if origin == "null":
            await send_error(send, OriginNotAllowed("Requests from an opaque origin are refused."))
            return
        await self.app(scope, receive, send)
