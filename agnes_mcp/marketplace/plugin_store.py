"""The content-addressed store of served plugin files: ``_plugins/<content hash>/``.

A plugin's files are written into a temporary folder (its name starts with '.', so the
collector of unreferenced folders leaves it alone), hashed as they are written, and the
folder is renamed to its content hash. The same content always lands in the same folder,
which is never changed once there: if it exists already the new copy is dropped. A feed
being built therefore never sees half a plugin, and a failed sync changes nothing served.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agnes_mcp.marketplace.layout import MarketplaceLayout


@dataclass(frozen=True)
class StoredFile:
    rel: str  # path inside the plugin folder, '/'-separated
    executable: bool
    data: Callable[[], bytes]  # reads the bytes when the file is written


@dataclass(frozen=True)
class StoredPlugin:
    content_hash: str
    files: int
    bytes: int


def content_hash(files: Iterable[tuple[str, bool, str]]) -> str:
    """sha256 over the sorted (relative path, exec bit, sha256 of the bytes) of the files."""
    digest = hashlib.sha256()
    for rel, executable, file_sha in sorted(files):
        digest.update(f"{rel}\0{'755' if executable else '644'}\0{file_sha}\n".encode())
    return digest.hexdigest()


def store_plugin(layout: MarketplaceLayout, files: Iterable[StoredFile]) -> StoredPlugin:
    """Write the files under ``layout.plugin_files(<their content hash>)``."""
    layout.plugins_dir.mkdir(parents=True, exist_ok=True)
    temp = layout.plugins_dir / f".writing-{uuid.uuid4().hex}"
    temp.mkdir(mode=0o755)
    try:
        hashed: list[tuple[str, bool, str]] = []
        total = 0
        for file in files:
            data = file.data()
            _write(temp, file.rel, data, file.executable)
            hashed.append((file.rel, file.executable, hashlib.sha256(data).hexdigest()))
            total += len(data)
        for folder, _, _ in os.walk(temp):
            Path(folder).chmod(0o755)  # whatever the umask
        key = content_hash(hashed)
        final = layout.plugin_files(key)
        if final.is_dir():
            shutil.rmtree(temp)  # the same content is stored already
        else:
            try:
                temp.rename(final)
            except OSError:  # another sync stored the same content just now
                if not final.is_dir():
                    raise
                shutil.rmtree(temp)
        return StoredPlugin(content_hash=key, files=len(hashed), bytes=total)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _write(root: Path, rel: str, data: bytes, executable: bool) -> None:
    target = root.joinpath(*rel.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as handle:  # 'x': never through a file that is there already
        handle.write(data)
    target.chmod(0o755 if executable else 0o644)
