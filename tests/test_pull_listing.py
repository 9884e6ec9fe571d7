"""What a pull reads of the manifest (``agnes_sync.pull.listing``): the same tables and
files as the manifest model, without it; and no manifest can make a pull write or remove
anything outside the workspace's data folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agnes_sync import manifest as model
from agnes_sync.pull.listing import API_VERSION, ManifestInvalid, ManifestTooNew, read_listing
from agnes_sync.pull.pull import pull
from agnes_sync.workspace.layout import WorkspacePaths

HASH = "ab" * 32


def document(*paths: str, digest: str = HASH, **extra: Any) -> dict[str, Any]:
    part = {"size": 10, "hash": digest, "rows": 1, "part": None}
    table = {
        "id": "orders",
        "name": "orders",
        "description": "",
        "query_mode": "local",
        "source_type": "files",
        "rows": 1,
        "size_bytes": 10,
        "schema": [{"name": "id", "type": "BIGINT"}],
        "updated": None,
        "hash": HASH,
        "parts": [{**part, "path": p} for p in paths],
    }
    return {
        "api_version": 1,
        "server_version": "0",
        "generated_at": "2026-01-01T00:00:00Z",
        "user": "ana@example.com",
        "tables": [table],
        "remote_tables": [],
        **extra,
    }


def test_the_same_files_as_the_manifest_model() -> None:
    text = json.dumps(document("orders/month=2026-01/part-0.parquet", "orders/x.parquet"))
    listing, full = read_listing(text), model.Manifest.model_validate_json(text)
    assert listing.user == full.user and listing.api_version == full.api_version
    assert [(t.id, [(p.path, p.size, p.hash) for p in t.parts]) for t in listing.tables] == [
        (t.id, [(p.path, p.size, p.hash) for p in t.parts]) for t in full.tables
    ]
    assert API_VERSION == model.API_VERSION


@pytest.mark.parametrize(
    "path",
    [
        "../outside.parquet",
        "orders/../../outside.parquet",
        "/etc/passwd",
        "orders//x.parquet",
        ".orders.parquet.0123456789abcdef.partial",
        "orders/.hidden/x.parquet",
        "orders\\..\\x.parquet",
        "",
        ".",
    ],
)
def test_no_file_outside_the_data_folder(path: str) -> None:
    with pytest.raises(ManifestInvalid, match="outside the workspace"):
        read_listing(json.dumps(document(path)))


@pytest.mark.parametrize("digest", ["../../x", "AB" * 32, "zz", 7])
def test_a_hash_is_hex(digest: object) -> None:
    with pytest.raises(ManifestInvalid):
        read_listing(json.dumps(document("orders.parquet", digest=digest)))  # type: ignore[arg-type]


def test_a_file_without_a_hash_is_left_to_its_own_check() -> None:
    [table] = read_listing(json.dumps(document("orders.parquet", digest=""))).tables
    assert table.parts[0].hash == ""


@pytest.mark.parametrize(
    "broken",
    [
        "not json",
        "[]",
        json.dumps({**document("a.parquet"), "tables": {}}),
        json.dumps({**document("a.parquet"), "user": None}),
        json.dumps(document("a.parquet")).replace('"size": 10', '"size": true'),
        json.dumps(document("a.parquet")).replace('"size": 10', '"size": -1'),
        json.dumps(document("a.parquet")).replace('"size": 10', '"size": "10"'),
    ],
)
def test_a_malformed_manifest_is_refused(broken: str) -> None:
    with pytest.raises(ManifestInvalid):
        read_listing(broken)


def test_a_newer_manifest_asks_for_a_newer_client() -> None:
    with pytest.raises(ManifestTooNew):
        read_listing(json.dumps({**document("a.parquet"), "api_version": API_VERSION + 1}))


class OneAnswer:
    """A transport whose manifest is ``text`` and which must never download."""

    def __init__(self, text: str) -> None:
        self.text = text

    def get_text_if_changed(self, path: str, etag: str | None) -> tuple[str | None, str | None]:
        return self.text, "v1"

    def get(self, path: str, **params: Any) -> Any:
        raise AssertionError("nothing to fetch")

    def open(self, *args: object) -> Any:
        raise AssertionError("nothing to download")


def test_a_hostile_manifest_changes_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"mine")
    hostile = json.dumps(document("../../outside.parquet"))
    with pytest.raises(ManifestInvalid):
        pull(WorkspacePaths(workspace), None, transport=OneAnswer(hostile))  # type: ignore[arg-type]
    assert outside.read_bytes() == b"mine" and not (workspace / ".agnes" / "data").exists()
