"""What ``agnes push`` uploads: Claude Code session transcripts and ``CLAUDE.local.md``,
kept per user under ``DATA_DIR/uploads/<user>/<kind>/<hash><suffix>``.

A body is streamed to a hidden file beside its destination while it is hashed (never
held in memory), checked against the hash the client declared, then renamed into place;
the same content twice is stored once (push is idempotent). An index line records the
file's name, workspace and time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agnes_mcp.errors import InvalidRequest, PayloadTooLarge
from agnes_sync import atomic
from agnes_sync.hashing import new_hasher


class UploadDamaged(InvalidRequest):
    code = "upload_damaged"
    status = 400
    default_hint = "Run 'agnes push' again."


KINDS = {"sessions": ".jsonl", "local-md": ".md"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Stored:
    hash: str
    size: int
    stored: bool  # False: the same content was already here


class UploadStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def folder(self, user_id: str, kind: str) -> Path:
        return self.root / user_id / kind

    async def receive(
        self,
        user_id: str,
        kind: str,
        name: str,
        workspace: str,
        body: AsyncIterator[bytes],
        declared: str | None,
    ) -> Stored:
        suffix = KINDS[kind]
        if not _NAME.match(name) or not name.endswith(suffix):
            raise InvalidRequest(f"'{name}' is not a {suffix} file name.")
        if declared is not None and not _HASH.match(declared):
            raise InvalidRequest("X-Agnes-Content-Hash must be a BLAKE3 hex digest.")
        folder = self.folder(user_id, kind)
        folder.mkdir(parents=True, exist_ok=True)
        staged = atomic.staging_path(folder / name)
        hasher, size = new_hasher(), 0
        try:
            with staged.open("wb") as out:
                async for chunk in body:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLarge(
                            f"The upload is larger than {self.max_bytes} bytes.",
                            hint="Raise max_upload_bytes on the server, or split the file.",
                        )
                    hasher.update(chunk)
                    out.write(chunk)
            digest = str(hasher.hexdigest())
            if declared is not None and digest != declared:
                raise UploadDamaged(
                    "The upload arrived damaged (its hash differs from the declared one)."
                )
            destination = folder / f"{digest}{suffix}"
            stored = not destination.exists()
            if stored:
                atomic.publish(staged, destination)
                entry = {
                    "hash": digest,
                    "name": name,
                    "workspace": workspace,
                    "size": size,
                    "uploaded_at": dt.datetime.now(dt.UTC).isoformat(),
                }
                with (folder / "index.jsonl").open("a", encoding="utf-8") as index:
                    index.write(json.dumps(entry) + "\n")
            return Stored(digest, size, stored)
        finally:
            atomic.discard(staged)

    def has(self, user_id: str, kind: str, digest: str) -> bool:
        return (
            _HASH.match(digest) is not None
            and (self.folder(user_id, kind) / f"{digest}{KINDS[kind]}").is_file()
        )
