"""The admin app's open websockets end with their web session, at once.

The gate admits a websocket once, when it opens; the page then lives on it. Without
more, a signed-out (or revoked, deactivated, demoted) admin's open tab kept talking to
the server until the page's own periodic check noticed. Here each admitted socket is
watched: every message from the browser re-checks the session first, and every committed
change to the system store (a sign-out, a revoked token, a removed membership) makes
each open socket re-check at once. A session that no longer admits its admin has its
socket closed with 1008 (policy violation), and nothing more passes either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable

from starlette.types import Message, Receive, Send

from agnes_mcp.services import Services
from agnes_sync.errors import AgnesError

CLOSE_POLICY = 1008


class AdminSockets:
    """The open admin websockets; woken whenever the system store changes."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._lock = threading.Lock()
        self._open: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        services.store.change_listeners.append(self._wake_all)

    def _wake_all(self) -> None:
        with self._lock:
            watched = list(self._open)
        for loop, changed in watched:
            with contextlib.suppress(RuntimeError):  # a loop already closed
                loop.call_soon_threadsafe(changed.set)

    def _admits(self, session_id: str) -> bool:
        try:
            session = self._services.web_sessions.check(session_id)
        except AgnesError:
            return False
        return session.principal.is_admin

    async def serve(
        self,
        session_id: str,
        receive: Receive,
        send: Send,
        app: Callable[[Receive, Send], Awaitable[None]],
    ) -> None:
        """Run ``app`` on the socket, closing it the moment the session ends."""
        changed = asyncio.Event()
        entry = (asyncio.get_running_loop(), changed)
        closed = False

        async def close() -> Message:
            nonlocal closed
            if not closed:
                closed = True
                with contextlib.suppress(Exception):  # the client may be gone already
                    await send({"type": "websocket.close", "code": CLOSE_POLICY})
            return {"type": "websocket.disconnect", "code": CLOSE_POLICY}

        async def ended() -> bool:
            return not await asyncio.to_thread(self._admits, session_id)

        async def guarded_receive() -> Message:
            if closed:
                return {"type": "websocket.disconnect", "code": CLOSE_POLICY}
            incoming = asyncio.ensure_future(receive())
            while True:
                watcher = asyncio.ensure_future(changed.wait())
                done, _ = await asyncio.wait(
                    {incoming, watcher}, return_when=asyncio.FIRST_COMPLETED
                )
                if incoming in done:
                    watcher.cancel()
                    message = incoming.result()
                    if message["type"] == "websocket.receive" and await ended():
                        return await close()
                    return message
                changed.clear()
                if await ended():
                    incoming.cancel()
                    return await close()

        async def guarded_send(message: Message) -> None:
            if not closed:
                await send(message)

        with self._lock:
            self._open.add(entry)
        try:
            await app(guarded_receive, guarded_send)
        finally:
            with self._lock:
                self._open.discard(entry)
