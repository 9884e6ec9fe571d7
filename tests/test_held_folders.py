"""A killed server (SIGKILL, the OOM killer) left its spill folder and its converted
tables (gigabytes) in the system's temporary folder, and every restart added more. The
next process removes the folders whose process is gone, and none of a live one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.rails import held_folders
from agnes_mcp.rails.held_folders import HeldFolder

# A process making both kinds of folder the way a server does, then waiting to be killed.
HOLDER = """
import sys
from agnes_mcp.rails import spill
from agnes_mcp.rails.native_tables import NativeTables
tables = NativeTables(1 << 20, min_bytes=0, memory_limit="100MB")
print(spill.folder(), tables._private_folder(), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def holders(temp: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _hold(temp: Path, holders: list[subprocess.Popen[str]]) -> list[Path]:
    """The folders a new holder process made (it waits until killed)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    holders.append(process)
    assert process.stdout is not None
    spill_file, tables = process.stdout.readline().split()
    folders = [Path(spill_file).parent, Path(tables)]
    assert all(f.is_dir() and f.parent == temp for f in folders), folders
    return folders


def test_a_killed_process_folders_are_swept_and_a_live_ones_kept(
    temp: Path, holders: list[subprocess.Popen[str]]
) -> None:
    killed = _hold(temp, holders)
    alive = _hold(temp, holders)
    old = temp / "agnes-spill-older-version"  # no lock file: not known to be abandoned
    old.mkdir()
    holders[0].send_signal(signal.SIGKILL)
    holders[0].wait()

    swept = held_folders.sweep_all()  # what a server does as it starts

    assert sorted(swept) == sorted(killed)
    assert not any(f.exists() for f in killed)
    assert all(f.is_dir() for f in alive) and old.is_dir()


def test_making_a_folder_sweeps_its_kind_and_removing_it_lets_go(
    temp: Path, holders: list[subprocess.Popen[str]]
) -> None:
    killed = _hold(temp, holders)
    holders[0].send_signal(signal.SIGKILL)
    holders[0].wait()

    held = HeldFolder("agnes-tables-")

    assert not killed[1].exists() and killed[0].is_dir()  # only its own kind
    assert held.path.is_dir() and held_folders.sweep("agnes-tables-") == []
    held.remove()
    held.remove()
    assert not held.path.exists()
