"""Running one request through the in-process command as the client would have run it:
its stdin text, working folder, stream encodings, which streams are terminals and their
sizes; stdout and stderr recorded in the order they were written."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from cli.main import run_in_process


class _Recorder(io.RawIOBase):
    """Appends what is written to fd 1 or 2 to ``segments`` (a write to the same fd as
    the last one extends it: a CSV of 100,000 rows is one segment, not 100,000)."""

    def __init__(self, fd: int, segments: list[tuple[int, bytearray]], tty: bool) -> None:
        self.fd = fd
        self.segments = segments
        self.tty = tty

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.tty  # what the client's stream is

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            if self.segments and self.segments[-1][0] == self.fd:
                self.segments[-1][1].extend(chunk)
            else:
                self.segments.append((self.fd, bytearray(chunk)))
        return len(chunk)


def _stream(
    fd: int, segments: list[tuple[int, bytearray]], form: list[str], tty: bool
) -> io.TextIOWrapper:
    encoding, errors = form
    return io.TextIOWrapper(
        _Recorder(fd, segments, tty),  # type: ignore[arg-type]
        encoding=encoding,
        errors=errors,
        write_through=True,
    )


@contextlib.contextmanager
def client_terminal(sizes: list[list[int] | None]) -> Iterator[None]:
    """``os.get_terminal_size`` answers for fds 0, 1 and 2 what it answered in the client
    (rich and argparse size tables and usage text by it); the server's own fds are
    /dev/null and a log."""
    real = os.get_terminal_size

    def client_size(fd: int = 1) -> os.terminal_size:
        if fd in (0, 1, 2):
            size = sizes[fd]
            if size is None:
                raise OSError(25, "Inappropriate ioctl for device")
            return os.terminal_size((size[0], size[1]))
        return real(fd)

    os.get_terminal_size = client_size
    try:
        yield
    finally:
        os.get_terminal_size = real


def run_captured(request: dict[str, Any], home: str) -> tuple[int, list[tuple[int, bytes]]]:
    """The exit code and the ``(fd, bytes)`` written by ``agnes <argv>`` run as the
    client would have run it. Unexpected exceptions propagate (the client then runs the
    command in process and shows its own traceback)."""
    segments: list[tuple[int, bytearray]] = []
    out_tty, err_tty = request["tty"]
    out = _stream(1, segments, request["stdout"], bool(out_tty))
    err = _stream(2, segments, request["stderr"], bool(err_tty))
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.StringIO(request["stdin"] or "")
    sys.stdout, sys.stderr = out, err
    try:
        os.chdir(request["cwd"])
        # A fresh warnings registry: a warning shows on every request, as in a new process.
        with warnings.catch_warnings(), client_terminal(request["terminal"]):
            try:
                code = run_in_process(list(request["argv"]))
            except SystemExit as exc:  # argparse: usage errors and --help
                code = _exit_code(exc.code)
    finally:
        for stream in (out, err):
            with contextlib.suppress(ValueError):  # closed by the command
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved
        os.chdir(home)
    return code, [(fd, bytes(chunk)) for fd, chunk in segments]


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")  # what the interpreter prints for sys.exit("text")
    return 1
