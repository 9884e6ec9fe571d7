"""A data dir whose disk refuses writes (full, read-only, over a quota or a file-size
limit): syncs fail typed, the previous data stays served, and a start says so plainly.

The refusal is real: the process's file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored)
makes the kernel refuse a write past it with EFBIG, as a full disk refuses with ENOSPC."""

from __future__ import annotations

import resource
import signal
from collections.abc import Callable, Iterator

import duckdb
import pytest

from agnes_mcp.services import Services
from agnes_sync.errors import StorageUnwritable
from tests.conftest import register


@pytest.fixture
def file_size_limit() -> Iterator[Callable[[int | None], None]]:
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def limit(size: int | None) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft if size is None else size, hard))

    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


def test_a_refused_write_fails_the_sync_typed_and_keeps_the_last_data(
    synced: Services, file_size_limit: Callable[[int | None], None]
) -> None:
    register(synced, id="small", source_type="sample", source_options={"rows": 50})
    register(synced, id="big", source_type="sample", source_options={"rows": 400_000})
    assert synced.sync.sync("small").status == "ok"
    file_size_limit(300_000)
    failed = synced.sync.sync("big")
    file_size_limit(None)
    assert failed.status == "error" and failed.error is not None
    assert failed.error["code"] == "storage_unwritable", failed.error
    assert "File too large" in failed.error["message"]
    assert str(synced.settings.data_dir) in failed.error["message"]
    state = synced.sync_states.get("big")
    assert state is not None and "File too large" in (state.last_error or "")
    analytics = duckdb.connect(str(synced.settings.data_dir / "analytics/server.duckdb"), True)
    try:
        assert analytics.execute("SELECT count(*) FROM small").fetchone() == (50,)
    finally:
        analytics.close()
    assert synced.sync.sync("big").status == "ok"  # room again: the next sync succeeds


def test_a_start_on_a_disk_refusing_writes_is_a_plain_error(
    services: Services, file_size_limit: Callable[[int | None], None]
) -> None:
    file_size_limit(50_000)  # an empty analytics DB takes ~270 KB
    with pytest.raises(StorageUnwritable) as caught:
        services.sync.recover()
    file_size_limit(None)
    assert "File too large" in caught.value.message
    assert str(services.settings.data_dir) in caught.value.message
    services.sync.recover()  # room again
