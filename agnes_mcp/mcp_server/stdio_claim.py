"""The process's stdin and stdout, claimed for the MCP wire.

The wire is served from private duplicates of descriptors 0 and 1, and those two are
pointed elsewhere (stdin at the null device, stdout at stderr), so a child process or a
stray ``print`` never reads the client's messages or writes into the answers. This is
what the MCP SDK's ``stdio_server`` does when given no streams; it is done here, with
public calls only, because the server also needs the descriptor the answers go out on,
to see when nobody reads them any more
(:func:`agnes_mcp.mcp_server.stdio_transport.reader_gone`). Where descriptors cannot be
duplicated (no ``fcntl``, a stream that is no descriptor), the streams are served in
place.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from io import TextIOWrapper
from typing import BinaryIO, Literal, TextIO


class UnownedText(TextIOWrapper):
    """A text layer whose close leaves its buffer open (it may be ``sys.stdout``'s own:
    closing it when the wrapper is collected would break ``sys.stdout``)."""

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.detach()


class WireOut(UnownedText):
    """The answers' text layer: once their reader has gone (a client that died), what is
    still written is dropped instead of failing the server with a broken pipe."""

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except BrokenPipeError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            super().flush()


def _to_null() -> int:
    return os.open(os.devnull, os.O_RDONLY)


def _to_stderr() -> int:
    try:
        return os.dup(2)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


def _claim(
    fd: int, stream: TextIO, mode: Literal["rb", "wb"], substitute: Callable[[], int]
) -> tuple[BinaryIO, int | None, Callable[[], None]]:
    """``fd``'s wire as a binary stream, the descriptor it is on (``None``: unknown), and
    how to point ``fd`` back at it."""
    try:
        import fcntl

        if stream.buffer.fileno() != fd:
            raise OSError(f"the stream is not on descriptor {fd}")
        private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    except (AttributeError, ImportError, OSError, ValueError):
        return stream.buffer, None, lambda: None
    try:
        other = substitute()
        os.dup2(other, fd)
        os.close(other)
    except OSError:
        os.close(private)
        return stream.buffer, fd, lambda: None

    def restore() -> None:
        with contextlib.suppress(OSError):
            os.dup2(private, fd)

    # closefd=False: a worker thread may still block reading it after the server ends.
    return os.fdopen(private, mode, closefd=False), private, restore


@contextlib.contextmanager
def claimed_stdio() -> Iterator[tuple[TextIO, TextIO, int | None]]:
    """The wire's input and output as text, and the descriptor the output goes out on
    (``None`` when unknown); descriptors 0 and 1 point back at the wire afterwards."""
    wire_in, _, restore_in = _claim(0, sys.stdin, "rb", _to_null)
    wire_out, out_fd, restore_out = _claim(1, sys.stdout, "wb", _to_stderr)
    try:
        yield (
            UnownedText(wire_in, encoding="utf-8", errors="replace"),
            WireOut(wire_out, encoding="utf-8"),
            out_fd,
        )
    finally:
        restore_out()
        restore_in()
