"""What a pull reads of the server's manifest (:mod:`agnes_sync.manifest`): its version,
the user, and each table's files (path, size, hash), checked as it is read.

Plain ``json`` and dataclasses: a pull does not pay ~50 ms for importing and building the
validation library's models. Every file name must stay inside ``.agnes/data/`` (relative,
no ``..``, no hidden part: those names are the pull's own partial files) and every hash
hex (it names the partial file too), so no manifest, whatever sent it, can make a
pull write or remove anything outside its data folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agnes_sync.errors import AgnesError

API_VERSION = 1  # the manifest version this client reads (agnes_sync.manifest.API_VERSION)
_HASH = re.compile(r"[0-9a-f]{0,128}")  # empty: a file without one fails its check alone
_SEGMENT = re.compile(r"[^/\\\x00]+")


class ManifestTooNew(AgnesError):
    code = "manifest_too_new"
    status = 400
    default_hint = "Update the agnes client: the server speaks a newer API."


class ManifestInvalid(AgnesError):
    code = "manifest_invalid"
    status = 502
    default_hint = (
        "Check --server-url / AGNES_SERVER_URL: the answer is not an Agnes manifest this "
        "client can use. Nothing was changed."
    )


@dataclass(frozen=True)
class ListedPart:
    path: str  # relative to .agnes/data/
    size: int
    hash: str


@dataclass(frozen=True)
class ListedTable:
    id: str
    parts: tuple[ListedPart, ...]


@dataclass(frozen=True)
class Listing:
    api_version: int
    user: str
    tables: tuple[ListedTable, ...]
    remote: tuple[str, ...] = ()  # the ids of the remote tables the caller may query

    def granted(self) -> frozenset[str]:
        """Every table the caller may read: pulled ones and remote ones."""
        return frozenset(t.id for t in self.tables) | frozenset(self.remote)


def _field(item: Any, key: str, kind: type, where: str) -> Any:
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestInvalid(f"The server's manifest has no valid '{key}' in {where}.")
    return value


def _path(value: str, where: str) -> str:
    segments = value.split("/")
    if not all(_SEGMENT.fullmatch(s) and s not in ("..", ".") and s[0] != "." for s in segments):
        raise ManifestInvalid(
            f"The server's manifest names a file outside the workspace's data folder "
            f"({value!r}, in {where})."
        )
    return value


def _part(item: Any, where: str) -> ListedPart:
    digest = _field(item, "hash", str, where)
    if not _HASH.fullmatch(digest):
        raise ManifestInvalid(f"The server's manifest has a malformed hash in {where}.")
    size = _field(item, "size", int, where)
    if size < 0:
        raise ManifestInvalid(f"The server's manifest has a negative size in {where}.")
    return ListedPart(_path(_field(item, "path", str, where), where), size, digest)


def read_listing(text: str) -> Listing:
    """The manifest's text, checked; ManifestTooNew or ManifestInvalid otherwise."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ManifestInvalid("The server's manifest is not JSON.") from None
    version = _field(document, "api_version", int, "the manifest")
    if version > API_VERSION:
        raise ManifestTooNew(
            f"The server's manifest is version {version}; this client reads up to {API_VERSION}."
        )
    tables = []
    for item in _field(document, "tables", list, "the manifest"):
        table = _field(item, "id", str, "a table")
        parts = _field(item, "parts", list, f"table '{table}'")
        where = f"table '{table}'"
        tables.append(ListedTable(table, tuple(_part(p, where) for p in parts)))
    remote = tuple(
        str(item["id"])
        for item in document.get("remote_tables") or []
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    )
    return Listing(version, _field(document, "user", str, "the manifest"), tuple(tables), remote)
