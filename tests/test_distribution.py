"""The server side of distribution: the per-caller manifest and file downloads (strong
ETags, 304, ranges, grants, nothing leaked)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agnes_mcp.distribution import uploads
from agnes_mcp.errors import PayloadTooLarge
from agnes_sync import atomic
from agnes_sync.hashing import file_hash
from agnes_sync.manifest import Manifest, table_hash
from tests.conftest import DemoServer
from tests.test_api_http import assert_error


@pytest.fixture
def analyst(demo_server: DemoServer) -> httpx.Client:
    return demo_server.client("analyst")


def manifest_of(client: httpx.Client) -> Manifest:
    response = client.get("/api/sync/manifest")
    assert response.status_code == 200, response.text
    return Manifest.model_validate(response.json())


def test_the_manifest_lists_granted_distributed_tables(
    demo_server: DemoServer, analyst: httpx.Client
) -> None:
    manifest = manifest_of(analyst)
    assert manifest.api_version == 1 and manifest.user.startswith("analyst@")
    tables = {t.id: t for t in manifest.tables}
    assert set(tables) == {
        "customers",
        "products",
        "orders",
        "order_items",
        "subscriptions",
        "web_sessions_daily",
    }
    assert [r.id for r in manifest.remote_tables] == ["web_sessions"]
    remote = manifest.remote_tables[0]
    assert remote.engine == "duckdb" and remote.partition_by == "event_date"
    assert remote.query_mode == "remote"
    orders = tables["orders"]
    assert orders.partition_by == "order_date" and len(orders.parts) > 10
    assert all(p.path.startswith("orders/order_date_month=") for p in orders.parts)
    assert orders.hash == table_hash(orders.parts) and orders.size_bytes == sum(
        p.size for p in orders.parts
    )
    assert {c.name for c in orders.columns} >= {"order_id", "order_date", "total_amount"}
    customers = tables["customers"]
    assert [p.path for p in customers.parts] == [
        "customers.parquet"
    ] and customers.updated is not None
    data = demo_server.live.services.settings.extracts_dir / "files" / "data"
    for part in orders.parts[:3] + customers.parts:
        on_disk = data / part.path
        assert part.size == on_disk.stat().st_size and part.hash == file_hash(on_disk)
    admin = manifest_of(demo_server.client("admin"))
    assert "support_tickets" in {t.id for t in admin.tables}


def test_server_only_tables_are_not_distributed(
    demo_server: DemoServer, analyst: httpx.Client
) -> None:
    services = demo_server.live.services
    with demo_server.client("admin") as admin:
        assert (
            admin.put("/api/admin/registry/products", json={"server_only": True}).status_code == 200
        )
        try:
            assert "products" not in {t.id for t in manifest_of(analyst).tables}
            error = assert_error(
                analyst.get("/api/data/products/download"), 403, "table_not_distributed"
            )
            assert "products" in error["message"]
        finally:
            admin.put("/api/admin/registry/products", json={"server_only": False})
    assert services.catalog_view is not None


def test_pulling_the_manifest_records_the_last_pull(
    demo_server: DemoServer, analyst: httpx.Client
) -> None:
    services = demo_server.live.services
    before = dt.datetime.now(dt.UTC)
    user = services.users.by_email(manifest_of(analyst).user)
    assert user is not None
    services.write_behind.flush()
    after = services.users.get(user.id).last_pull_at
    assert after is not None and after >= before - dt.timedelta(milliseconds=1)


def test_the_manifest_etag_follows_what_it_lists(
    demo_server: DemoServer, analyst: httpx.Client
) -> None:
    first = analyst.get("/api/sync/manifest")
    etag = first.headers["etag"]
    again = analyst.get("/api/sync/manifest", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    # Another caller sees other tables: another tag, and never a 304 on the analyst's.
    admin = demo_server.client("admin")
    assert admin.get("/api/sync/manifest", headers={"If-None-Match": etag}).status_code == 200
    # A change to what the analyst may pull changes the tag.
    assert admin.put("/api/admin/registry/products", json={"server_only": True}).status_code == 200
    try:
        changed = analyst.get("/api/sync/manifest", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
    finally:
        admin.put("/api/admin/registry/products", json={"server_only": False})
    assert analyst.get("/api/sync/manifest", headers={"If-None-Match": etag}).status_code == 304


def test_download_with_etag_304_and_ranges(demo_server: DemoServer, analyst: httpx.Client) -> None:
    part = next(t for t in manifest_of(analyst).tables if t.id == "customers").parts[0]
    whole = analyst.get("/api/data/customers/download")
    assert whole.status_code == 200 and whole.headers["etag"] == f'"{part.hash}"'
    assert whole.headers["content-type"] == "application/vnd.apache.parquet"
    assert len(whole.content) == part.size and whole.content[:4] == b"PAR1"
    again = analyst.get("/api/data/customers/download", headers={"If-None-Match": f'"{part.hash}"'})
    assert (
        again.status_code == 304
        and again.content == b""
        and again.headers["etag"] == f'"{part.hash}"'
    )
    stale = analyst.get("/api/data/customers/download", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    ranged = analyst.get("/api/data/customers/download", headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == whole.content[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{part.size}"
    tail = analyst.get(
        "/api/data/customers/download",
        headers={"Range": "bytes=500-", "If-Range": f'"{part.hash}"'},
    )
    assert tail.status_code == 206 and tail.content == whole.content[500:]
    changed = analyst.get(
        "/api/data/customers/download", headers={"Range": "bytes=500-", "If-Range": '"old"'}
    )
    assert changed.status_code == 200 and changed.content == whole.content


def test_partitioned_tables_download_by_part(analyst: httpx.Client) -> None:
    orders = next(t for t in manifest_of(analyst).tables if t.id == "orders")
    assert_error(analyst.get("/api/data/orders/download"), 422, "invalid_request")
    part = orders.parts[1]
    got = analyst.get("/api/data/orders/download", params={"part": part.path})
    assert (
        got.status_code == 200
        and got.headers["etag"] == f'"{part.hash}"'
        and len(got.content) == part.size
    )
    for bad in ("../../state/system.duckdb", "orders/nope/part-0.parquet", "/etc/passwd"):
        assert_error(
            analyst.get("/api/data/orders/download", params={"part": bad}), 404, "data_not_found"
        )


def test_no_download_without_a_grant_and_nothing_leaks(analyst: httpx.Client) -> None:
    answers = {}
    for table in ("support_tickets", "ghost"):
        error = assert_error(analyst.get(f"/api/data/{table}/download"), 404, "data_not_found")
        text = str(error)
        assert "/" not in error["message"] and "extracts" not in text and ".parquet" not in text
        answers[table] = text.replace(table, "<t>")
    # An existing, ungranted table answers exactly like one that does not exist.
    assert answers["support_tickets"] == answers["ghost"]
    assert_error(analyst.get("/api/data/web_sessions/download"), 403, "table_not_distributed")


def test_downloads_need_a_token(demo_server: DemoServer) -> None:
    with httpx.Client(base_url=demo_server.live.base_url) as anonymous:
        assert anonymous.get("/api/data/customers/download").status_code == 401
        assert anonymous.get("/api/sync/manifest").status_code == 401


def test_instructions_are_served_and_admins_may_change_them(
    demo_server: DemoServer, analyst: httpx.Client
) -> None:
    text = analyst.get("/api/workspace/instructions").json()["claude_md"]
    assert "catalog" in text and "snapshot_estimate" in text
    services = demo_server.live.services
    services.server_config.set("agent_instructions", "Use Agnes. Be brief.")
    try:
        assert (
            analyst.get("/api/workspace/instructions").json()["claude_md"] == "Use Agnes. Be brief."
        )
    finally:
        services.server_config.delete("agent_instructions")


def test_uploads_are_stored_once_and_checked(
    demo_server: DemoServer, analyst: httpx.Client, tmp_path: Path
) -> None:
    from agnes_sync.hashing import new_hasher

    body = b'{"type":"user","message":"hello"}\n' * 100
    hasher = new_hasher()
    hasher.update(body)
    digest = hasher.hexdigest()
    url = "/api/upload/sessions?name=abc.jsonl&workspace=/home/x"
    first = analyst.post(url, content=body, headers={"X-Agnes-Content-Hash": digest})
    assert first.status_code == 200 and first.json() == {
        "hash": digest,
        "size": len(body),
        "stored": True,
    }
    again = analyst.post(url, content=body, headers={"X-Agnes-Content-Hash": digest})
    assert again.json()["stored"] is False
    assert analyst.get(f"/api/upload/sessions/{digest}").json() == {"stored": True}
    damaged = analyst.post(url, content=body + b"x", headers={"X-Agnes-Content-Hash": digest})
    assert_error(damaged, 400, "upload_damaged")
    # without the hash nothing could check the body: it was kept unchecked
    unchecked = analyst.post(url.replace("abc", "unchecked"), content=b"{}\n")
    said = assert_error(unchecked, 422, "invalid_request")
    assert said["details"]["fields"] == [{"field": "X-Agnes-Content-Hash", "problem": "missing"}]
    assert_error(
        analyst.post("/api/upload/sessions?name=../../evil.jsonl", content=b"x"),
        422,
        "invalid_request",
    )
    services = demo_server.live.services
    user = services.users.by_email(analyst.get("/api/whoami").json()["email"])
    assert user is not None
    stored = services.settings.data_dir / "uploads" / user.id / "sessions" / f"{digest}.jsonl"
    assert stored.read_bytes() == body


def test_an_upload_is_written_and_published_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the body's reading runs on the loop: the writes (a megabyte at a time, never
    the whole body held), the fsync and the publish run on worker threads."""
    threads: dict[str, list[int]] = {"write": [], "fsync": []}
    written: list[int] = []
    real_write, real_fsync = uploads._write, atomic.fsync_file

    def write(out: Any, gathered: list[bytes], flushing: Any) -> None:
        threads["write"].append(threading.get_ident())
        written.append(sum(map(len, gathered)))
        real_write(out, gathered, flushing)

    def fsync(path: Path) -> None:
        threads["fsync"].append(threading.get_ident())
        real_fsync(path)

    monkeypatch.setattr(uploads, "_write", write)
    monkeypatch.setattr(atomic, "fsync_file", fsync)

    async def upload() -> tuple[int, uploads.Stored]:
        store = uploads.UploadStore(tmp_path / "uploads", 10**9)
        stored = await store.receive(
            "u1", "sessions", "a.jsonl", "/w", _body(50), _digest(_CHUNK * 50)
        )
        return threading.get_ident(), stored

    loop_thread, stored = asyncio.run(upload())
    assert stored.hash == _digest(_CHUNK * 50) and stored.stored
    folder = tmp_path / "uploads" / "u1" / "sessions"
    assert (folder / f"{stored.hash}.jsonl").read_bytes() == _CHUNK * 50
    assert json.loads((folder / "index.jsonl").read_text())["size"] == len(_CHUNK) * 50
    assert threads["write"] and threads["fsync"]
    assert loop_thread not in threads["write"] + threads["fsync"]
    assert len(written) >= 3 and max(written) < 2 * uploads.WRITE_BYTES
    assert sorted(p.name for p in folder.iterdir()) == [f"{stored.hash}.jsonl", "index.jsonl"]


def test_the_same_upload_twice_at_once_is_stored_and_recorded_once(tmp_path: Path) -> None:
    async def twice() -> list[uploads.Stored]:
        store = uploads.UploadStore(tmp_path / "uploads", 10**9)
        return list(
            await asyncio.gather(
                *(
                    store.receive(
                        "u1", "sessions", f"{k}.jsonl", "/w", _body(20), _digest(_CHUNK * 20)
                    )
                    for k in "ab"
                )
            )
        )

    first, second = asyncio.run(twice())
    assert first.hash == second.hash and sorted([first.stored, second.stored]) == [False, True]
    folder = tmp_path / "uploads" / "u1" / "sessions"
    assert len((folder / "index.jsonl").read_text().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == [f"{first.hash}.jsonl", "index.jsonl"]


def test_a_refused_upload_leaves_nothing_behind(tmp_path: Path) -> None:
    store = uploads.UploadStore(tmp_path / "uploads", 3 * len(_CHUNK))
    with pytest.raises(PayloadTooLarge):
        asyncio.run(
            store.receive("u1", "sessions", "a.jsonl", "/w", _body(10), _digest(_CHUNK * 10))
        )
    with pytest.raises(uploads.UploadDamaged):
        asyncio.run(store.receive("u1", "sessions", "a.jsonl", "/w", _body(2), "0" * 64))
    assert list((tmp_path / "uploads" / "u1" / "sessions").iterdir()) == []


def test_one_user_keeps_only_so_much_in_uploads(tmp_path: Path) -> None:
    """The per-user bound counts what is kept and what is in progress (uploads at once
    cannot pass it together); another user is not held up; files are the user's alone."""
    bound = 25 * len(_CHUNK)
    store = uploads.UploadStore(tmp_path / "uploads", 10**9, per_user_bytes=bound)

    async def run() -> list[object]:
        first = await store.receive(
            "u1", "sessions", "a.jsonl", "/w", _body(10), _digest(_CHUNK * 10)
        )
        at_once = await asyncio.gather(
            *(
                store.receive(
                    "u1", "sessions", f"{k}.jsonl", "/w", _chunks(k, 10), _digest(_tagged(k) * 10)
                )
                for k in "bc"
            ),
            return_exceptions=True,
        )
        other = await store.receive(
            "u2", "sessions", "a.jsonl", "/w", _body(20), _digest(_CHUNK * 20)
        )
        return [first, *at_once, other]

    first, b, c, other = asyncio.run(run())
    assert isinstance(first, uploads.Stored) and isinstance(other, uploads.Stored)
    refused = [r for r in (b, c) if isinstance(r, PayloadTooLarge)]
    assert len(refused) == 1 and "max_upload_bytes_per_user" in refused[0].message
    folder = tmp_path / "uploads" / "u1"
    kept = sum(p.stat().st_size for p in folder.rglob("*.jsonl") if p.name != "index.jsonl")
    assert kept <= bound and not [p for p in folder.rglob("*") if ".partial" in p.name]
    for path in folder.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path  # nothing for other host accounts
    assert uploads._IN_FLIGHT == {}  # nothing left counted


async def _chunks(tag: str, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield _tagged(tag)
        await asyncio.sleep(0)


def _tagged(tag: str) -> bytes:
    return _CHUNK.replace(b"x", tag.encode(), 1)


_CHUNK = b'{"type":"user","message":"' + b"x" * 65_000 + b'"}\n'


async def _body(chunks: int) -> AsyncIterator[bytes]:
    for _ in range(chunks):
        yield _CHUNK
        await asyncio.sleep(0)  # another request's turn


def _digest(data: bytes) -> str:
    from agnes_sync.hashing import new_hasher

    hasher = new_hasher()
    hasher.update(data)
    return str(hasher.hexdigest())


def test_head_on_a_download_answers_its_headers_without_the_file(
    demo_server: DemoServer, analyst: httpx.Client
) -> None:
    """``HEAD`` (``curl -I``) gives what the ``GET`` would: size, ETag, type; no body."""
    part = next(t for t in manifest_of(analyst).tables if t.id == "customers").parts[0]
    head = analyst.head("/api/data/customers/download")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(part.size)
    assert head.headers["etag"] == f'"{part.hash}"'
    assert head.headers["content-type"] == "application/vnd.apache.parquet"
    ranged = analyst.head("/api/data/customers/download", headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "100"
    unknown = "/api/data/no-such-table/download"  # refused as the GET is, nothing leaked
    assert analyst.head(unknown).status_code == analyst.get(unknown).status_code == 404
    # the connection is still usable: the next answer is read from where the head ended
    assert analyst.get("/api/data/customers/download").content[:4] == b"PAR1"
