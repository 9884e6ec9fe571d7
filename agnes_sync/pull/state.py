"""What a workspace holds as of its last pull (``.agnes/pull-state.json``): per file its
hash, size and modification time, so that an unchanged pull reads no parquet at all, and
the manifest's ETag, so that it does not even read the manifest again.

Plain dataclasses and ``json``: a pull with nothing to do should not pay for importing a
validation library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from agnes_sync import atomic


@dataclass(frozen=True)
class FileState:
    table: str
    hash: str
    size: int
    mtime_ns: int


@dataclass
class PullState:
    server_url: str = ""
    user: str = ""
    pulled_at: str = ""  # ISO 8601, UTC
    manifest_etag: str = ""  # the server's ETag of what the manifest lists
    tables: int = 0
    files: dict[str, FileState] = field(default_factory=dict)  # by path under .agnes/data/

    @classmethod
    def read(cls, path: Path) -> PullState:
        """The last state, or an empty one (none yet, or unreadable: every file is then
        checked afresh)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                server_url=str(data.get("server_url", "")),
                user=str(data.get("user", "")),
                pulled_at=str(data.get("pulled_at", "")),
                manifest_etag=str(data.get("manifest_etag", "")),
                tables=int(data.get("tables", 0)),
                files={
                    name: FileState(
                        str(f["table"]), str(f["hash"]), int(f["size"]), int(f["mtime_ns"])
                    )
                    for name, f in data.get("files", {}).items()
                },
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls()

    def write(self, path: Path) -> None:
        # By hand, not dataclasses.asdict (which deep-copies: ~20 ms for 1,000 files).
        record = {
            "server_url": self.server_url,
            "user": self.user,
            "pulled_at": self.pulled_at,
            "manifest_etag": self.manifest_etag,
            "tables": self.tables,
            "files": {
                name: {"table": f.table, "hash": f.hash, "size": f.size, "mtime_ns": f.mtime_ns}
                for name, f in self.files.items()
            },
        }
        atomic.write_text(path, json.dumps(record))

    def files_in_place(self, data: Path) -> bool:
        """Every recorded file still on disk with its recorded size and mtime."""
        for relative, known in self.files.items():
            try:
                stat = (data / relative).stat()
            except OSError:
                return False
            if stat.st_size != known.size or stat.st_mtime_ns != known.mtime_ns:
                return False
        return True
