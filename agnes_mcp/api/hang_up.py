"""A route's query work, stopped when its client hangs up.

uvicorn runs a route to its end even when the client has gone (a notebook cell
interrupted, a script killed, a proxy's timeout): a slow query would run to the query
timeout for nobody, holding the caller's query slot. :func:`unless_hung_up` races the work
with the client's ``http.disconnect``; when that comes first the work is cancelled, which
interrupts its queries (:func:`~agnes_mcp.query.concurrency.in_query_lane`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response

from agnes_sync.caller import CallCancelled


async def _hung_up(request: Request) -> None:
    """Return when the client disconnects (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_hung_up(request: Request, work: Awaitable[Response]) -> Response:
    """``work``'s response, or, when the client hangs up first, ``work`` cancelled."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_hung_up(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        gone.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return Response(status_code=CallCancelled.status)
