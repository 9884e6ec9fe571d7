"""Telling the person what a pull is doing: a rich progress bar on a terminal, a plain
line at least every five seconds otherwise (logs, hooks), nothing with --quiet."""

from __future__ import annotations

import sys
import threading
import time
from typing import Protocol, TextIO

from agnes_sync.human_size import human_size


class Reporter(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, size: int) -> None: ...
    def file_done(self, relative: str, ok: bool) -> None: ...
    def finish(self) -> None: ...


class Quiet:
    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, size: int) -> None:
        pass

    def file_done(self, relative: str, ok: bool) -> None:
        pass

    def finish(self) -> None:
        pass


class PlainLines:
    """One line at the start, then at least every ``every`` seconds, then at the end."""

    def __init__(self, out: TextIO | None = None, every: float = 5.0) -> None:
        self._out = out or sys.stderr
        self._every = every
        self._lock = threading.Lock()
        self._files = self._bytes = self._done_files = self._done_bytes = 0
        self._last = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _line(self) -> None:
        self._out.write(
            f"pull: {self._done_files}/{self._files} files, "
            f"{human_size(self._done_bytes)} of {human_size(self._bytes)}\n"
        )
        self._out.flush()
        self._last = time.monotonic()

    def start(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self._files, self._bytes = files, total_bytes
            self._line()
        self._ticker = threading.Thread(target=self._tick, name="agnes-pull-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self._every / 5):
            with self._lock:
                if time.monotonic() - self._last >= self._every:
                    self._line()

    def advance(self, size: int) -> None:
        with self._lock:
            self._done_bytes += size

    def file_done(self, relative: str, ok: bool) -> None:
        with self._lock:
            self._done_files += 1
            if not ok:
                self._out.write(f"pull: {relative} failed\n")

    def finish(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._line()


class RichBar:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("pull"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: int | None = None
        self._files = self._done = 0
        self._lock = threading.Lock()

    def start(self, files: int, total_bytes: int) -> None:
        self._files = files
        self._progress.start()
        self._task = self._progress.add_task("pull", total=total_bytes, files=f"0/{files} files")

    def advance(self, size: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, size)  # type: ignore[arg-type]

    def file_done(self, relative: str, ok: bool) -> None:
        with self._lock:
            self._done += 1
            if self._task is not None:
                self._progress.update(self._task, files=f"{self._done}/{self._files} files")  # type: ignore[arg-type]
        if not ok:
            self._progress.console.print(f"[red]{relative} failed[/red]")

    def finish(self) -> None:
        self._progress.stop()


def reporter_for(quiet: bool, as_json: bool) -> Reporter:
    if quiet or as_json:
        return Quiet()
    return RichBar() if sys.stderr.isatty() else PlainLines()
