"""A whole-answer deadline for httpx clients that call a source's API.

httpx's ``timeout`` bounds each network operation (connect, each read), not a request:
an answer that trickles in (a byte every few seconds, from a stalled proxy or a broken
load balancer) never times out, and holds its sync worker, or a source's webhook worker,
for as long as it trickles. :func:`answer_deadline` is a response hook that gives the
body ``seconds`` from the moment its headers arrived; past it, reading the body raises
:class:`httpx.ReadTimeout`, which callers already retry as a network failure. With the
per-operation timeouts (connect, headers) a request then lasts about three times
``seconds`` at most.

For API calls, whose answers are small. A file download may rightly take long, but not
for ever: :func:`progress_deadline` asks it to bring ``min_bytes`` every ``seconds``
(1 MiB a minute is 17 KB/s), so one trickling in fails at once instead of when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx


class _Deadline(httpx.SyncByteStream):
    def __init__(
        self, inner: httpx.SyncByteStream, deadline: float, seconds: float, request: httpx.Request
    ) -> None:
        self.inner = inner
        self.deadline = deadline
        self.seconds = seconds
        self.request = request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            if time.monotonic() > self.deadline:
                # no URL here: a query string may hold a signature
                raise httpx.ReadTimeout(
                    f"the answer had not fully arrived {self.seconds:g} s after its headers",
                    request=self.request,
                )
            yield chunk

    def close(self) -> None:
        self.inner.close()


def answer_deadline(seconds: float) -> Callable[[httpx.Response], None]:
    """An httpx ``response`` event hook: the body must arrive within ``seconds``."""

    def hook(response: httpx.Response) -> None:
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream):
            response.stream = _Deadline(
                stream, time.monotonic() + seconds, seconds, response.request
            )

    return hook


class _Progress(httpx.SyncByteStream):
    def __init__(
        self, inner: httpx.SyncByteStream, seconds: float, min_bytes: int, request: httpx.Request
    ) -> None:
        self.inner = inner
        self.seconds = seconds
        self.min_bytes = min_bytes
        self.request = request

    def __iter__(self) -> Iterator[bytes]:
        window, brought = time.monotonic(), 0
        for chunk in self.inner:
            brought += len(chunk)
            now = time.monotonic()
            if brought >= self.min_bytes:
                window, brought = now, 0
            elif now - window > self.seconds:
                # no URL here: a query string may hold a signature
                raise httpx.ReadTimeout(
                    f"the download brought {brought:,} bytes in {now - window:.0f} s, less "
                    f"than {self.min_bytes:,} bytes in {self.seconds:g} s",
                    request=self.request,
                )
            yield chunk

    def close(self) -> None:
        self.inner.close()


def progress_deadline(seconds: float, min_bytes: int) -> Callable[[httpx.Response], None]:
    """An httpx ``response`` event hook: the body must bring ``min_bytes`` (or its end)
    every ``seconds``, counted from its headers."""

    def hook(response: httpx.Response) -> None:
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream):
            response.stream = _Progress(stream, seconds, min_bytes, response.request)

    return hook
