"""Mounting the admin app into the server's FastAPI app (the ``agnes.web_apps`` entry
point ``admin``).

:func:`install` returns at once: importing Panel costs about two seconds, so once the
server has started (lifespan startup done) a background thread imports it and every page
module, then the pages are added on the server's event loop with
``panel.io.fastapi.add_applications`` -- one Panel app per registered page at
``page.path`` -- and ``app.state.admin_readiness`` is set. The admin gate
(``agnes_mcp.api.admin_gate``) holds requests to ``/admin*`` until then.

What the embedding is given, and why:

- ``sign_sessions=True`` with a key derived from the web-session key: Bokeh session ids
  and tokens cannot be made up by a client.
- ``include_headers=[X-Agnes-Session-Ref]`` and ``include_cookies=[]``: the signed
  session token Bokeh embeds in the page carries only the session *id* the gate set, no
  cookie, ``Authorization`` or CSRF value (Panel's FastAPI handler treats ``None`` as
  "everything" and ``[]`` as "nothing"; header names are compared as Tornado spells
  them).
- ``websocket_origin``: the allowed hosts, for the record only; bokeh-fastapi 0.1.8 never
  checks it, so the Host/Origin guard checks websocket handshakes itself.

After mounting, the routes are checked: Bokeh's ``/static`` mounts must be the only
routes under ``/static`` and nothing registered before them may answer ``/admin*``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match

from agnes_mcp.api.admin_gate import STATIC_PREFIX, AdminReadiness, is_admin_path
from agnes_mcp.api.host_guard import allowed_hosts_for
from agnes_mcp.services import Services

logger = logging.getLogger("agnes.admin")

# Tornado's spelling: Bokeh compares the allow-list with HTTPHeaders' normalised names.
SESSION_REF_HEADER = "X-Agnes-Session-Ref"
CLIENT_IP_HEADER = "X-Agnes-Client-Ip"


PAGE_THREADS = 4  # admin page callbacks run at the same time, off the event loop


def bokeh_secret(services: Services) -> bytes:
    """The key signing Bokeh session ids and tokens (derived, never the session key)."""
    return hmac.new(services.web_sessions.key, b"agnes-bokeh-sessions", hashlib.sha256).digest()


@dataclass
class MountTimes:
    """When the admin app became ready (seconds, ``time.perf_counter`` based)."""

    installed: float = field(default_factory=time.perf_counter)
    import_started: float | None = None  # the server finished starting
    imported: float | None = None  # Panel and the pages imported (background thread)
    ready: float | None = None  # routes added, requests served

    @property
    def import_seconds(self) -> float | None:
        if self.imported is None or self.import_started is None:
            return None
        return self.imported - self.import_started


@dataclass
class AdminMount:
    app: FastAPI
    services: Services
    readiness: AdminReadiness
    times: MountTimes = field(default_factory=MountTimes)
    application: Any = None  # the BokehFastAPI instance, once mounted
    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: bool = False
    _cleanup: asyncio.Task[None] | None = None

    # --- the server's lifespan ---------------------------------------------------------

    def wrap_lifespan(self) -> None:
        original = self.app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            async with original(app) as state:
                # Startup has finished (services started): import Panel now, in a thread,
                # so it does not compete with the start for the CPU.
                self._loop = asyncio.get_running_loop()
                threading.Thread(
                    target=self._prepare, name="agnes-admin-import", daemon=True
                ).start()
                try:
                    yield state
                finally:
                    self._stopping = True
                    if self._cleanup is not None:
                        self._cleanup.cancel()

        self.app.router.lifespan_context = lifespan

    # --- the background import and the mount --------------------------------------------

    def start(self) -> None:
        self.readiness.pending()
        self.wrap_lifespan()

    def _prepare(self) -> None:
        self.times.import_started = time.perf_counter()
        try:
            from panel.io import fastapi as panel_fastapi

            from agnes_admin import session_order

            # Widget callbacks call services that read the system DB or run a sync: they
            # run on Panel's thread pool, never on the event loop every request shares,
            # each page's in the order its admin made them.
            session_order.install(PAGE_THREADS)

            from agnes_admin.shell import page_apps

            apps, titles = page_apps(self.services)
        except Exception as exc:
            logger.exception("the admin app could not be loaded")
            self.readiness.failed(f"import failed: {type(exc).__name__}")
            return
        self.times.imported = time.perf_counter()
        logger.info("admin app imported in %.2f s", self.times.import_seconds or 0.0)
        loop = self._loop
        if loop is None or self._stopping or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._mount, panel_fastapi.add_applications, apps, titles)
        except RuntimeError:  # the loop closed meanwhile: the server is stopping
            return

    def _mount(
        self, add_applications: Callable[..., Any], apps: dict[str, Any], titles: dict[str, str]
    ) -> None:
        """On the event loop: add the routes (no request is routed meanwhile)."""
        if self._stopping:
            return
        try:
            before = list(self.app.router.routes)
            lifespan = self.app.router.lifespan_context
            self.application = add_applications(
                apps,
                app=self.app,
                title=titles,
                sign_sessions=True,
                secret_key=bokeh_secret(self.services),
                include_headers=[SESSION_REF_HEADER, CLIENT_IP_HEADER],
                include_cookies=[],
                websocket_origin=list(allowed_hosts_for(self.services.settings)),
            )
            # The app is already running: Bokeh's lifespan hook would never run, so undo
            # it and run its cleanup of unused sessions here.
            self.app.router.lifespan_context = lifespan
            added = self.app.router.routes[len(before) :]
            check_routes(before, added)
            for route in added:  # pages, not API: keep them out of /api/openapi.json
                if isinstance(route, APIRoute):
                    route.include_in_schema = False
            self.app.openapi_schema = None
            self._cleanup = asyncio.get_running_loop().create_task(self.application._cleanup_loop())
        except Exception as exc:
            logger.exception("the admin app could not be mounted")
            self.readiness.failed(f"mount failed: {type(exc).__name__}: {exc}")
            return
        self.times.ready = time.perf_counter()
        self.readiness.ready()


def _matches(route: BaseRoute, path: str, kind: str = "http") -> bool:
    scope = {"type": kind, "path": path, "method": "GET", "root_path": ""}
    match, _ = route.matches(scope)
    return match is not Match.NONE


def check_routes(before: list[BaseRoute], added: list[BaseRoute]) -> None:
    """Refuse a mount that could shadow or be shadowed: no route other than Bokeh's own
    static mounts answers under ``/static``, and no earlier route answers an admin page."""
    probes = ["/static/js/bokeh.min.js", "/static/extensions/panel/panel.min.js"]
    for route in before:
        for path in probes:
            if _matches(route, path):
                raise RuntimeError(f"route {getattr(route, 'path', route)!r} shadows {path}")
        for new in added:
            path = getattr(new, "path", "")
            if is_admin_path(path) and _matches(route, path.replace("{path:path}", "x")):
                raise RuntimeError(f"route {getattr(route, 'path', route)!r} shadows {path}")
    for route in added:
        path = getattr(route, "path", "")
        inside = path == STATIC_PREFIX or path.startswith(STATIC_PREFIX + "/")
        if inside and type(route).__name__ != "Mount":
            raise RuntimeError(f"unexpected route {path!r} under /static")


def install(app: FastAPI, services: Services) -> AdminMount:
    """Add the Panel pages under /admin (in the background; see the module docstring)."""
    readiness = getattr(app.state, "admin_readiness", None)
    if not isinstance(readiness, AdminReadiness):
        # Without the gate the pages would be open to anyone: refuse to mount.
        raise RuntimeError("the server has no admin gate (app.state.admin_readiness)")
    mount = AdminMount(app, services, readiness)
    app.state.admin_mount = mount
    mount.start()
    return mount
