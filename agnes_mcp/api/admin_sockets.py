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

    def _admits(self, session_id: str, touch: bool) -> tuple[bool, float | None]:
        """Whether the session still admits its admin, and the seconds until it ends by
        itself (idle, or its token's expiry) unless used again. Only a message from the
        browser is use (``touch``): a store change or the wait running out is not."""
        sessions = self._services.web_sessions
        try:
            session = sessions.check(session_id, touch=touch)
        except AgnesError:
            return False, None
        return session.principal.is_admin, sessions.seconds_left(session_id)

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

        left: list[float | None] = [None]  # seconds until the session ends by itself

        async def ended(touch: bool) -> bool:
            admitted, left[0] = await asyncio.to_thread(self._admits, session_id, touch)
            return not admitted

        async def guarded_receive() -> Message:
            if closed:
                return {"type": "websocket.disconnect", "code": CLOSE_POLICY}
            if left[0] is None and await ended(False):
                return await close()
            incoming = asyncio.ensure_future(receive())
            while True:
                watcher = asyncio.ensure_future(changed.wait())
                # the idle limit or the token's expiry ends the session without any
                # change to the store: the wait ends then, and the session is re-checked
                wait = None if left[0] is None else left[0] + 0.01
                done, _ = await asyncio.wait(
                    {incoming, watcher}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if incoming in done:
                    watcher.cancel()
                    message = incoming.result()
                    if message["type"] == "websocket.receive" and await ended(True):
                        return await close()
                    return message
                if watcher not in done:
                    watcher.cancel()
                changed.clear()
                if await ended(False):
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
