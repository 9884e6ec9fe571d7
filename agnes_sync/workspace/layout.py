"""Where things live in a workspace (``<folder>/.agnes/``)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agnes_sync.errors import AgnesError

DOT = ".agnes"


@dataclass(frozen=True)
class WorkspacePaths:
    root: Path  # the workspace folder (the one Claude Code opens)

    @property
    def dot(self) -> Path:
        return self.root / DOT

    @property
    def data(self) -> Path:
        return self.dot / "data"

    @property
    def snapshots(self) -> Path:
        return self.dot / "snapshots"

    @property
    def results(self) -> Path:
        return self.dot / "results"

    @property
    def db(self) -> Path:
        return self.dot / "agnes.duckdb"

    @property
    def manifest(self) -> Path:
        return self.dot / "manifest.json"

    @property
    def pending_manifest(self) -> Path:
        """The manifest of a pull that began fetching and has not finished (stopped, or
        under way): what it set out to fetch. Removed when the pull ends."""
        return self.dot / "manifest.pending.json"

    @property
    def pull_failure(self) -> Path:
        """The last pull's failure, until a pull succeeds (:mod:`agnes_sync.pull.failure`)."""
        return self.dot / "pull-failed.json"

    @property
    def catalog(self) -> Path:
        """The server's catalog and metric definitions at the last contact (for offline)."""
        return self.dot / "catalog.json"

    def ensure(self) -> WorkspacePaths:
        """The workspace's folders, ``.agnes/`` readable by its owner only (0700): it holds
        company data, as the server's data dir does; one another account could read is
        tightened."""
        self.dot.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = self.dot.stat()
        if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.getuid():
            self.dot.chmod(0o700)
        for folder in (self.data, self.snapshots, self.results):
            folder.mkdir(parents=True, exist_ok=True)
        return self


class NoWorkspace(AgnesError):
    """A command that works in a workspace found none: it is never made implicitly (only
    ``agnes init`` makes one), so a typo or a stray folder cannot become a workspace."""

    code = "no_workspace"
    status = 404
    default_hint = (
        "A workspace is a folder holding .agnes/, made by `agnes init --server-url URL "
        "--token TOKEN` there; inside one (or a folder below it) commands find it, elsewhere "
        "pass --workspace W."
    )


INIT_ADVICE = "run `agnes init` in the folder you want to use"


def is_workspace(folder: Path) -> bool:
    """``folder`` is a workspace: ``agnes init`` made ``.agnes/`` there."""
    return (folder / DOT).is_dir()


def enclosing_workspace(start: Path) -> WorkspacePaths | None:
    """The workspace holding ``start``: the nearest folder, ``start`` or above, with
    ``.agnes/``; None when there is none."""
    here = start.resolve()
    return next((WorkspacePaths(f) for f in (here, *here.parents) if is_workspace(f)), None)


def require_workspace(explicit: str | Path | None, start: Path) -> WorkspacePaths:
    """The workspace a command works in: ``explicit`` (``--workspace``), which must be one,
    else the one holding ``start``; :class:`NoWorkspace` when there is none. Creates
    nothing."""
    if explicit:
        folder = Path(explicit).expanduser().resolve()
        if not is_workspace(folder):
            why = "no such folder" if not folder.exists() else "it holds no .agnes/"
            raise NoWorkspace(
                f"{folder} is not an Agnes workspace ({why}): {INIT_ADVICE}.",
                details={"workspace": str(folder)},
            )
        return WorkspacePaths(folder)
    found = enclosing_workspace(start)
    if found is None:
        raise NoWorkspace(
            f"No Agnes workspace here (or above): {INIT_ADVICE}.",
            details={"folder": str(start.resolve())},
        )
    return found
