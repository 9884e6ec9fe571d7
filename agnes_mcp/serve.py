"""Running the server: bind first (clear errors, known port), then hand over to uvicorn."""

from __future__ import annotations

import errno
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from agnes_mcp.access_log import hide_query_values
from agnes_mcp.api.admin_gate import AdminReadiness
from agnes_mcp.api.app import create_app
from agnes_mcp.bootstrap_admin import ensure_admin
from agnes_mcp.errors import BindError
from agnes_mcp.http_protocol import PER_CLIENT_ATTRIBUTE, HttpProtocol
from agnes_mcp.rails.watchdog import WATCHDOG
from agnes_mcp.services import Services
from agnes_mcp.settings import AgnesSettings

logger = logging.getLogger("agnes.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP; without it every keep-alive response stalls ~40 ms
    # on Nagle's algorithm meeting the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"Port {port} on {host} is already in use.",
                hint="Stop the other server or pass another --port (e.g. --port 8001).",
            ) from None
        raise BindError(
            f"Cannot listen on {host}:{port}: {exc.strerror}.",
            hint="Check --host (an address of this machine) and --port.",
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(settings: AgnesSettings, app: ASGIApp) -> uvicorn.Config:
    """How Agnes runs under uvicorn: proxy headers believed only from trusted proxies."""
    proxies = settings.trusted_proxies
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(proxies) if proxies else "",
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
        http=HttpProtocol,  # an answer's head and small body in one send (http_protocol)
        # asyncio's own loop, even where uvloop is installed (uvicorn's "auto" would take
        # it): uvloop's subprocess spawning crashed the test suite's process (SIGSEGV) as a
        # git clone started git-http-backend among many threads.
        loop="asyncio",
    )
    # read by the protocol's admission (uvicorn has no such option of its own)
    setattr(config, PER_CLIENT_ATTRIBUTE, settings.max_connections_per_client)
    hide_query_values()  # after the Config: it has set up uvicorn's loggers
    return config


def serve(
    settings: AgnesSettings,
    services: Services | None = None,
    *,
    on_ready: Callable[[AgnesSettings], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM), then flush and close the store.

    ``on_ready`` runs once the app has started, with the settings (actual port included).
    """
    # bind first: a port that is taken (or a host not of this machine) stops the start
    # before anything is written (the store, the first admin and its token)
    try:
        sock = bind(settings.host, settings.port)
    except BaseException:
        if services is not None:
            services.close()
        raise
    actual_port = sock.getsockname()[1]
    if actual_port != settings.port:
        settings = settings.model_copy(update={"port": actual_port})
        if services is not None:
            services.settings = settings
    with sock:
        services = services or Services.open(settings)
        try:
            ensure_admin(services)
            # before uvicorn: a data dir that cannot be written stops the start with a
            # message, not a traceback from inside the app's lifespan
            services.sync.recover()

            def started() -> None:
                freeze_startup_heap(app.state.admin_readiness)
                # tables synced before this start are converted in the background, not by
                # the first query that reads them
                services.query.convert_tables()
                if on_ready is not None:
                    on_ready(settings)

            app = create_app(services, on_started=started)
            server = _Server(uvicorn_config(settings, app))
            with _signals_end_quietly(server):
                server.run(sockets=[sock])
        finally:
            services.close()


# How long the admin app may take to mount before the heap is frozen without it.
ADMIN_SETTLE_SECONDS = 300.0


def freeze_startup_heap(readiness: AdminReadiness) -> None:
    """Move what start-up built (modules, schemas, the admin app once it has mounted) out
    of the cyclic garbage collector's sight with :func:`gc.freeze`: they live as long as
    the process, yet each full collection walked all ~400,000 of them, stopping every
    thread for 250-450 ms (every 20-30 s under the fleet benchmark's load: its /healthz
    and tool-call p99); after it a full collection takes ~1 ms. Only ``serve`` calls it:
    a test process building many apps must keep collecting their garbage."""
    gc.freeze()

    def after_admin_app() -> None:
        readiness.wait_settled(ADMIN_SETTLE_SECONDS)
        gc.freeze()

    threading.Thread(target=after_admin_app, name="agnes-heap-freeze", daemon=True).start()


class _Server(uvicorn.Server):
    """One Ctrl-C can arrive twice within milliseconds (the terminal signals the process
    group, and ``uv run`` forwards its own copy): a repeat within a second is the same
    request to stop, not uvicorn's "second Ctrl-C forces an unclean exit"."""

    _first_stop: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self._first_stop is not None and now - self._first_stop < 1.0:
            return
        if self._first_stop is None:
            self._first_stop = now
            # running queries stop now with server_stopping (503), instead of holding the
            # stop until the grace runs out and their callers getting a bare 500
            WATCHDOG.stop_all()
        super().handle_exit(sig, frame)


@contextmanager
def _signals_end_quietly(server: uvicorn.Server) -> Iterator[None]:
    """Ctrl-C or SIGTERM while serving: uvicorn shuts down gracefully, then re-sends the
    signal to the handler installed before it, inside its event loop. Ours only notes it,
    so the process ends normally (exit 0) rather than with a traceback of cancelled tasks.
    A signal before uvicorn took over interrupts the start as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not server.started:
            raise KeyboardInterrupt
        stopping = True
        logger.info("Agnes stopped (%s).", signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, before in previous.items():
            # Stopping by signal: a late duplicate must not interrupt the final flush.
            signal.signal(sig, signal.SIG_IGN if stopping or server.should_exit else before)
