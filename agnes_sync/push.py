"""``agnes push``: upload this workspace's Claude Code session transcripts and its
``CLAUDE.local.md`` to the server, each file once (by content hash). One push at a time.

Claude Code keeps transcripts in ``$CLAUDE_CONFIG_DIR/projects/<folder>/*.jsonl`` (default
``~/.claude``), where ``<folder>`` is the workspace's absolute path with every character
other than a letter or digit replaced by ``-``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, Field

from agnes_sync import atomic
from agnes_sync.errors import AgnesError
from agnes_sync.hashing import file_hash
from agnes_sync.server_api import ServerApi
from agnes_sync.workspace.layout import WorkspacePaths
from agnes_sync.workspace.lock import workspace_lock

STATE_FILE = "push-state.json"
CHUNK = 1 << 20


class PushBusy(AgnesError):
    code = "push_running"
    status = 409
    default_hint = "Wait for the other 'agnes push' in this workspace to finish."


class PushState(BaseModel):
    sent: dict[str, str] = Field(default_factory=dict)  # path -> hash last uploaded


@dataclass
class PushSummary:
    uploaded: int = 0
    unchanged: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "uploaded": self.uploaded,
            "unchanged": self.unchanged,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "failed": self.failed,
        }


def claude_home() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".claude"


def transcripts_dir(workspace: Path) -> Path:
    return claude_home() / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(workspace.resolve()))


def _files(paths: WorkspacePaths) -> Iterator[tuple[str, Path]]:
    folder = transcripts_dir(paths.root)
    if folder.is_dir():
        for path in sorted(folder.glob("*.jsonl")):
            yield "sessions", path
    local_md = paths.root / "CLAUDE.local.md"
    if local_md.is_file():
        yield "local-md", local_md


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            yield block


def push(paths: WorkspacePaths, api: ServerApi) -> PushSummary:
    started = time.perf_counter()
    summary = PushSummary()
    with workspace_lock(paths, "push.lock", PushBusy):
        state_path = paths.dot / STATE_FILE
        try:
            state = PushState.model_validate_json(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = PushState()
        for kind, path in _files(paths):
            digest = file_hash(path, mapped=False)
            key = str(path)
            if state.sent.get(key) == digest:
                summary.unchanged += 1
                continue
            query = f"workspace={quote(str(paths.root), safe='')}"
            if kind == "sessions":
                query += f"&name={quote(path.name, safe='')}"
            try:
                with api.stream(
                    "POST",
                    f"/api/upload/{kind}?{query}",
                    headers={
                        "X-Agnes-Content-Hash": digest,
                        "Content-Type": "application/octet-stream",
                    },
                    content=_chunks(path),
                ) as response:
                    answer = json.loads(response.read())
            except AgnesError as exc:
                summary.failed.append({"file": path.name, "code": exc.code, "message": exc.message})
                continue
            if answer.get("stored"):
                summary.uploaded += 1
                summary.bytes += path.stat().st_size
            else:
                summary.unchanged += 1
            state.sent[key] = digest
        atomic.write_text(state_path, state.model_dump_json())
    summary.seconds = time.perf_counter() - started
    return summary
