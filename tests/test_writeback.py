"""Early writeback: a file is queued for writeback as it grows, so its fsync is short.

The kernel call is replaced by a recorder where the test checks which ranges are queued
(the real call promises nothing observable but its return code); the real call runs
under a DuckDB COPY."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from agnes_sync import strategies, writeback
from agnes_sync.writeback import EVERY, FOLLOW_MIN, WATCHER, Follower, Writeback, following

Kicks = list[tuple[int, int]]


@pytest.fixture
def kicks(monkeypatch: pytest.MonkeyPatch) -> Kicks:
    """The (offset, length) of every range queued, instead of queuing it."""
    seen: Kicks = []

    def record(fd: int, offset: int, length: int) -> int:
        seen.append((offset, length))
        return 0

    monkeypatch.setattr(writeback, "_kick", record)
    return seen


def _grow(path: Path, count: int) -> None:
    with path.open("ab") as out:
        out.write(b"x" * count)


def test_a_download_queues_every_so_many_bytes_and_the_rest_at_the_end(kicks: Kicks) -> None:
    flushing = Writeback(fd=7, start=100)  # a resumed download: 100 bytes were there
    flushing.wrote(EVERY - 1)
    assert kicks == []
    flushing.wrote(1)
    assert kicks == [(100, EVERY)]
    flushing.wrote(5)
    flushing.finish()
    flushing.finish()  # nothing left the second time
    assert kicks == [(100, EVERY), (100 + EVERY, 5)]


def test_a_follower_queues_the_whole_pages_the_file_gained_once_past_the_minimum(
    tmp_path: Path, kicks: Kicks
) -> None:
    path = tmp_path / "growing.parquet"
    follower = Follower(path)
    follower.look()  # not created yet: nothing to open, nothing queued
    assert follower.fd is None and kicks == []
    _grow(path, FOLLOW_MIN // 2)
    follower.look()
    assert follower.fd is not None and kicks == []  # too little yet
    _grow(path, FOLLOW_MIN // 2 + 10)  # the last 10 bytes are on a page still being written
    follower.look()
    assert kicks == [(0, FOLLOW_MIN)]
    _grow(path, 100)
    follower.look()
    assert kicks == [(0, FOLLOW_MIN)]
    _grow(path, FOLLOW_MIN)
    follower.look()
    assert kicks == [(0, FOLLOW_MIN), (FOLLOW_MIN, FOLLOW_MIN)]
    fd = follower.fd
    assert fd is not None
    follower.close()
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
    _grow(path, 2 * FOLLOW_MIN)
    follower.look()  # a closed follower neither reopens nor queues
    assert follower.fd is None and len(kicks) == 2


def test_a_file_that_goes_away_is_not_an_error(tmp_path: Path, kicks: Kicks) -> None:
    path = tmp_path / "gone"
    path.mkdir()  # a directory: opened, never grows
    follower = Follower(path)
    follower.look()
    path.rmdir()
    follower.look()
    follower.close()
    assert kicks == []


def test_one_thread_follows_every_file_and_stops_with_each_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared thread looks at the file while the block runs (signalled, not timed),
    is the same thread for the next block, and leaves nothing open when a block fails."""
    looked = threading.Event()
    opened: list[int] = []

    def record(fd: int, offset: int, length: int) -> int:
        opened.append(fd)
        looked.set()
        return 0

    monkeypatch.setattr(writeback, "_kick", record)
    path = tmp_path / "staged.parquet"
    with pytest.raises(RuntimeError, match="the COPY failed"), following(path) as follower:
        assert follower is not None
        _grow(path, FOLLOW_MIN)
        assert looked.wait(30), "the thread never looked at the file"
        raise RuntimeError("the COPY failed")
    first = WATCHER.thread
    assert first is not None and first.is_alive()
    assert follower is not None and follower.fd is None
    with pytest.raises(OSError):
        os.fstat(opened[0])
    looked.clear()
    other = tmp_path / "other.parquet"
    with following(other):
        _grow(other, FOLLOW_MIN)
        assert looked.wait(30)
    assert WATCHER.thread is first
    assert [t for t in threading.enumerate() if t.name == "agnes-writeback"] == [first]


def test_without_sync_file_range_following_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writeback, "_kick", None)
    path = tmp_path / "staged.parquet"
    with following(path) as follower:
        assert follower is None
        _grow(path, FOLLOW_MIN * 2)
    assert path.stat().st_size == FOLLOW_MIN * 2


@pytest.mark.skipif(writeback._kick is None, reason="sync_file_range is Linux's")
def test_the_kernel_takes_the_call_on_a_read_only_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "written"
    _grow(path, FOLLOW_MIN)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert writeback._kick is not None
        assert writeback._kick(fd, 0, FOLLOW_MIN) == 0
        assert writeback._kick(-1, 0, FOLLOW_MIN) == -1  # and reports a bad one
    finally:
        os.close(fd)


def test_an_extract_copy_is_followed_and_its_file_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COPY runs inside ``following`` its target, with the real kernel call: the file
    DuckDB leaves is the whole parquet."""
    followed: list[tuple[Path, bool]] = []
    real = writeback.following

    @contextmanager
    def recording(path: Path) -> Iterator[Follower | None]:
        with real(path) as follower:
            yield follower
            followed.append((path, path.is_file()))  # written while followed

    monkeypatch.setattr(writeback, "following", recording)
    target = tmp_path / "orders.parquet"
    con = duckdb.connect()
    sql = "SELECT range AS id, md5(range::VARCHAR) AS h FROM range(300000)"
    rows = strategies._copy(con, sql, target)
    assert rows == 300_000 and followed == [(target, True)]
    assert con.execute(f"SELECT count(*), count(DISTINCT h) FROM '{target}'").fetchone() == (
        300_000,
        300_000,
    )
