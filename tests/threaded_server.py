"""An ASGI app served by uvicorn on 127.0.0.1 and a free port, in a thread: the base of
the test servers that speak someone else's protocol (the BigQuery fake) or stand between
client and server (the fault proxy)."""

from __future__ import annotations

import threading
import time
from typing import Any, Self

import uvicorn

from agnes_mcp.serve import bind


class ThreadedServer:
    def __init__(self, app: Any, log_level: str = "warning") -> None:
        self._sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
