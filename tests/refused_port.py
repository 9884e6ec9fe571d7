"""A local URL whose connections are refused, for tests of an unreachable server.

The port stays bound (not listening) for the test's duration: the kernel refuses every
connection to it, and no other process (another test worker's server) can take it. A
port bound, closed and then used could be taken by another listener in between, and a
test expecting "cannot be reached" would reach it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refused_url() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` with nothing listening on PORT until the block ends."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
