"""Early writeback: a file is queued for writeback as it grows, so its fsync is short.

The kernel call is replaced by a recorder where the test checks which ranges are queued
(the real call promises nothing observable); the real call runs under a DuckDB COPY."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from agnes_sync import strategies, writeback
from agnes_sync.writeback import FOLLOW_MIN, Follower, following


@pytest.fixture
def kicks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (offset, length) of every range queued, instead of queuing it."""
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(
        writeback, "_kick", lambda fd, offset, length: seen.append((offset, length))
    )
    return seen


def _grow(path: Path, count: int) -> None:
    with path.open("ab") as out:
        out.write(b"x" * count)


def test_a_follower_queues_what_the_file_gained_in_steps_of_at_least_the_minimum(
    tmp_path: Path, kicks: list[tuple[int, int]]
) -> None:
    path = tmp_path / "growing.parquet"
    follower = Follower(path)
    follower.look()  # not created yet: nothing to open, nothing queued
    assert follower.fd is None and kicks == []
    _grow(path, FOLLOW_MIN // 2)
    follower.look()
    assert follower.fd is not None and kicks == []  # too little yet
    _grow(path, FOLLOW_MIN // 2 + 10)
    follower.look()
    assert kicks == [(0, FOLLOW_MIN + 10)]
    _grow(path, 100)
    follower.look()
    assert kicks == [(0, FOLLOW_MIN + 10)]
    _grow(path, FOLLOW_MIN)
    follower.look()
    assert kicks == [(0, FOLLOW_MIN + 10), (FOLLOW_MIN + 10, FOLLOW_MIN + 100)]
    follower.close()
    assert follower.fd is None


def _writeback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "agnes-writeback"]


def test_following_ends_its_thread_and_closes_the_file_when_the_block_fails(
    tmp_path: Path, kicks: list[tuple[int, int]]
) -> None:
    path = tmp_path / "staged.parquet"
    _grow(path, 10)
    with pytest.raises(RuntimeError, match="the COPY failed"), following(path) as follower:
        assert follower is not None and len(_writeback_threads()) == 1
        follower.look()  # what the thread does; opens the file
        assert follower.fd is not None
        raise RuntimeError("the COPY failed")
    assert _writeback_threads() == [] and follower.fd is None


def test_without_sync_file_range_following_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writeback, "_kick", None)
    path = tmp_path / "staged.parquet"
    with following(path) as follower:
        assert follower is None and _writeback_threads() == []
        _grow(path, FOLLOW_MIN * 2)
    assert path.stat().st_size == FOLLOW_MIN * 2


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
    rows = strategies._copy(
        con, "SELECT range AS id, md5(range::VARCHAR) AS h FROM range(300000)", target
    )
    assert rows == 300_000 and followed == [(target, True)]
    assert con.execute(f"SELECT count(*), count(DISTINCT h) FROM '{target}'").fetchone() == (
        300_000,
        300_000,
    )
