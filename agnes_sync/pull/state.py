"""What a workspace holds as of its last pull (``.agnes/pull-state.json``): per file its
hash, size and modification time, so that an unchanged pull reads no parquet at all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, Field

from agnes_sync import atomic


class FileState(BaseModel):
    table: str
    hash: str
    size: int
    mtime_ns: int


class PullState(BaseModel):
    server_url: str = ""
    user: str = ""
    pulled_at: dt.datetime | None = None
    manifest_hash: str = ""  # of what the manifest lists (not when it was made)
    files: dict[str, FileState] = Field(default_factory=dict)  # by path under .agnes/data/

    @classmethod
    def read(cls, path: Path) -> PullState:
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()  # none yet, or unreadable: every file is checked afresh

    def write(self, path: Path) -> None:
        staged = atomic.staging_path(path)
        try:
            staged.write_text(self.model_dump_json(), encoding="utf-8")
            atomic.publish(staged, path)
        finally:
            atomic.discard(staged)
