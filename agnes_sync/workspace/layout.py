"""Where things live in a workspace (``<folder>/.agnes/``)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

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


def find_workspace(start: Path) -> WorkspacePaths:
    """The workspace holding ``start`` (the nearest folder with ``.agnes/``), else
    ``start`` itself as a new workspace."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / DOT).is_dir():
            return WorkspacePaths(folder)
    return WorkspacePaths(here)
