"""The door of the admin app: only signed-in admins reach ``/admin*`` and Panel's routes.

Panel's own auth hooks do not run when it is mounted in FastAPI, and ``pn.state.user``
is forgeable, so this pure ASGI middleware decides before Panel sees anything:

- ``/admin``, ``/admin/...`` (each page, its ``/ws`` websocket) and Panel's root
  ``/components/...``: no valid ``agnes_session`` cookie → 303 to
  ``/auth/login?next=<path>`` (a websocket is closed before it is accepted, i.e. 403);
  a signed-in non-admin → 403 page pointing at ``/me``; an admin → the request goes on
  with the client's ``Cookie``, ``Authorization`` and any ``x-agnes-session-ref`` removed
  and our own ``x-agnes-session-ref`` (the session *id*, never its secret) added. Panel
  therefore never holds a credential it could embed in a page.
- ``/static/...`` (Bokeh's and Panel's JavaScript, mounted at the root): public files,
  not gated, but like the rest it waits for the admin app to be mounted.

The admin app is mounted in the background after the server starts (importing Panel
takes seconds). Until then a request to any of these paths waits on
:class:`AdminReadiness` (bounded) and gets 503 with ``Retry-After`` if it is still not
ready; never a 404 that a browser would cache as "no admin here".
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import threading
from enum import StrEnum
from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.admin_sockets import AdminSockets
from agnes_mcp.api.json_errors import send_body
from agnes_mcp.api.rewritten_body import rewriting_body
from agnes_mcp.api.web_session import session_from_cookies
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.services import Services
from agnes_mcp.web_layout import esc, html_page

logger = logging.getLogger("agnes.admin")

ADMIN_PREFIX = "/admin"
COMPONENTS_PREFIX = "/components/"  # Panel's component resources (root, whatever the prefix)
STATIC_PREFIX = "/static"  # Bokeh's static files (mounted at the root by bokeh-fastapi)
SESSION_REF_HEADER = b"x-agnes-session-ref"
# The client's address as the HTTP layer found it (trusted proxies applied), for the audit
# rows of the page's actions (a page's callbacks run outside any HTTP request).
CLIENT_IP_HEADER = b"x-agnes-client-ip"
LOGIN_PATH = "/auth/login"
STRIPPED_HEADERS = frozenset({b"cookie", b"authorization", SESSION_REF_HEADER, CLIENT_IP_HEADER})
PAGE_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)


class ReadyState(StrEnum):
    ABSENT = "absent"  # no admin app installed: the paths are ordinary 404s
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class AdminReadiness:
    """Whether the admin app is mounted yet; awaited from any event loop, set from any
    thread (the mount runs in a background thread, requests on the server's loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = ReadyState.ABSENT
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._settled = threading.Event()
        self.reason = ""

    @property
    def state(self) -> ReadyState:
        return self._state

    def pending(self) -> None:
        with self._lock:
            if self._state is ReadyState.ABSENT:
                self._state = ReadyState.PENDING

    def ready(self) -> None:
        self._settle(ReadyState.READY, "")

    def failed(self, reason: str) -> None:
        self._settle(ReadyState.FAILED, reason)

    def _settle(self, state: ReadyState, reason: str) -> None:
        with self._lock:
            self._state, self.reason = state, reason
            waiters, self._waiters = self._waiters, []
        self._settled.set()
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def wait_settled(self, timeout: float) -> ReadyState:
        """From a thread: the state once no longer pending (absent counts as settled), or
        still pending after ``timeout`` s."""
        if self._state is not ReadyState.PENDING:
            return self._state
        self._settled.wait(timeout)
        return self._state

    async def wait(self, timeout: float) -> ReadyState:
        """The state once it is no longer pending, or still pending after ``timeout`` s."""
        event = asyncio.Event()
        with self._lock:
            if self._state is not ReadyState.PENDING:
                return self._state
            entry = (asyncio.get_running_loop(), event)
            self._waiters.append(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
        return self._state


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def is_gated_path(path: str) -> bool:
    """Paths that need a signed-in admin."""
    return is_admin_path(path) or path.startswith(COMPONENTS_PREFIX)


def is_panel_path(path: str) -> bool:
    """Paths served by the admin app (gated or not)."""
    return is_gated_path(path) or path == STATIC_PREFIX or path.startswith(STATIC_PREFIX + "/")


# Panel's component resource route (``ComponentResourceHandler``) imports whatever module
# its URL names and answers an unknown one 500: only a class of a module already imported
# from these packages passes, asking for one of the attributes Panel serves (its
# ``_resource_attrs``; a test keeps this copy equal to Panel's).
COMPONENT_PACKAGES = frozenset({"panel", "bokeh", "agnes_admin"})
RESOURCE_ATTRS = (
    "__css__",
    "__javascript__",
    "__js_module__",
    "__javascript_modules__",
    "_resources",
    "_css",
    "_js",
    "base_css",
    "css",
    "_stylesheets",
    "modifiers",
    "_bundle_path",
    "_bundle_css",
)


def known_component(path: str) -> bool:
    """Whether ``/components/<module>/<class>/<attribute>/<file>`` names a component Panel
    may serve a file of, decided without importing anything."""
    parts = path[len(COMPONENTS_PREFIX) :].split("/")
    if len(parts) < 4:
        return False
    module_name, cls, attribute = parts[:3]
    if module_name.split(".")[0] not in COMPONENT_PACKAGES or attribute not in RESOURCE_ATTRS:
        return False
    module = sys.modules.get(module_name)
    return module is not None and isinstance(getattr(module, cls, None), type)


def login_redirect(path: str, query: bytes) -> str:
    target = path + ("?" + query.decode("latin-1") if query else "")
    return f"{LOGIN_PATH}?next={quote(target, safe='/')}"


class AdminGate:
    def __init__(
        self,
        app: ASGIApp,
        services: Services,
        readiness: AdminReadiness,
        wait_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.services = services
        self.readiness = readiness
        self.wait_seconds = wait_seconds
        self.sockets = AdminSockets(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not is_panel_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if is_gated_path(path):
            scope = await self._admit(scope, send)
            if not scope:
                return
        state = self.readiness.state
        if state is ReadyState.PENDING:
            state = await self.readiness.wait(self.wait_seconds)
        if state in (ReadyState.PENDING, ReadyState.FAILED):
            await self._unavailable(scope, receive, send, state)
            return
        if scope["type"] == "http" and is_admin_path(path):
            send = _with_page_headers(send, Headers(scope=scope).get("host"))
        if path.startswith(COMPONENTS_PREFIX) and not known_component(path):
            await _send_not_found(scope, send)
            return
        session_ref = Headers(scope=scope).get(SESSION_REF_HEADER.decode("ascii"))
        if scope["type"] == "websocket" and session_ref:  # it ends with its session
            app = self.app
            await self.sockets.serve(session_ref, receive, send, lambda r, s: app(scope, r, s))
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, send: Send) -> Scope:
        """The scope to pass on for a signed-in admin; otherwise answers and returns {}."""
        headers = Headers(scope=scope)
        session = session_from_cookies(self.services, headers.get("cookie"))
        websocket = scope["type"] == "websocket"
        if session is None:
            if websocket:
                await send({"type": "websocket.close", "code": 1008})
            else:
                location = login_redirect(scope["path"], scope.get("query_string", b""))
                await _send_redirect(send, location)
            return {}
        if not session.principal.is_admin:  # the Admin group, and the admin scope
            if websocket:
                await send({"type": "websocket.close", "code": 1008})
            else:
                response = html_page(
                    "Admins only",
                    "<section><h1>Admins only</h1><p>The admin app is for members of the "
                    "Admin group, signed in with the admin scope (a session opened with a "
                    "data-only token has not got it). You are signed in as "
                    f"{esc(session.principal.email)}; "
                    "your page is <a href='/me'>/me</a>.</p></section>",
                    instance_name=self.services.settings.instance_name,
                    status_code=403,
                )
                await response(scope, _no_receive, send)
            return {}
        kept = [(k, v) for k, v in scope["headers"] if k.lower() not in STRIPPED_HEADERS]
        kept.append((SESSION_REF_HEADER, session.id.encode("ascii")))
        client_ip = client_ip_var.get()
        if client_ip:
            kept.append((CLIENT_IP_HEADER, client_ip.encode("ascii", "replace")))
        return {**scope, "headers": kept}

    async def _unavailable(
        self, scope: Scope, receive: Receive, send: Send, state: ReadyState
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        if state is ReadyState.FAILED:
            logger.warning("admin app unavailable: %s", self.readiness.reason)
            text = "The admin app could not be loaded; the server log says why."
        else:
            text = "The admin app is still starting; this page reloads in a few seconds."
        response = html_page(
            "Starting",
            f"<section><h1>Admin app unavailable</h1><p>{esc(text)}</p></section>",
            instance_name=self.services.settings.instance_name,
            status_code=503,
        )
        response.headers["Retry-After"] = "5"
        await response(scope, receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def _send_not_found(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send_body(send, 404, b"No such component resource.", "text/plain; charset=utf-8")


async def _send_redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"content-length", b"0"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def content_security_policy(nonce: str, host: str | None) -> bytes:
    """The admin pages' CSP: scripts only from this server's files or carrying this
    answer's nonce (no inline event handlers, no injected ``<script>``), connections only
    back to this server (its websocket included), nothing framed, no plugins.
    ``'unsafe-eval'`` lets those scripts compile code the server sent them (Bokeh's
    ``js_on_click`` callbacks, Panel's ReactiveHTML and FlexBox build functions from
    text): a script of the page's own may evaluate, an injected one still cannot run."""
    sockets = f" ws://{host} wss://{host}" if host else ""
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}' 'unsafe-eval'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; "
        f"connect-src 'self'{sockets}; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ).encode("ascii")


def with_nonce(html: bytes, nonce: str) -> bytes:
    """Every ``<script`` tag of a page Panel made, carrying ``nonce``."""
    return html.replace(b"<script", b'<script nonce="' + nonce.encode("ascii") + b'"')


def _with_page_headers(send: Send, host: str | None) -> Send:
    """Keep the admin pages out of frames and caches, and their scripts to their own: an
    HTML answer (a page of a few KiB) is held whole to give its scripts a fresh nonce."""

    ours = {name for name, _ in PAGE_HEADERS} | {b"content-security-policy"}
    nonce = secrets.token_urlsafe(18)
    policy = content_security_policy(nonce, host)

    def start(message: Message) -> tuple[Message, bool]:
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
        headers += [*PAGE_HEADERS, (b"content-security-policy", policy)]
        page = Headers(raw=headers).get("content-type", "").startswith("text/html")
        return {**message, "headers": headers}, page

    return rewriting_body(send, start, lambda body: with_nonce(body, nonce))
