"""A corrupt, locked or unreachable system DB fails with an error naming the file and a fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agnes_mcp.errors import SystemStoreCorrupt, SystemStoreError, SystemStoreLocked
from agnes_mcp.store.database import SystemStore

HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_corrupt_file_is_named_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "system.duckdb"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(SystemStoreCorrupt) as caught:
        SystemStore.open(path)
    assert str(path) in caught.value.message
    assert "backup" in (caught.value.hint or "")
    assert path.read_bytes().startswith(b"this is not a database")  # nothing was overwritten


def test_locked_file_names_the_holder_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "system.duckdb"
    SystemStore.open(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(SystemStoreLocked) as caught:
            SystemStore.open(path)
        assert str(path) in caught.value.message
        assert f"PID {holder.pid}" in caught.value.message
        assert "--data-dir" in (caught.value.hint or "")
    finally:
        holder.kill()
        holder.wait()


def test_unwritable_parent_is_explained(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemStoreError) as caught:
        SystemStore.open(blocker / "state" / "system.duckdb")
    assert "state" in caught.value.message
    assert "data dir" in (caught.value.hint or "")


def test_server_start_on_corrupt_store_prints_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "state").mkdir(parents=True)
    (data / "state" / "system.duckdb").write_bytes(b"\x00garbage" * 1000)
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        "error: The system DB" in result.stderr and "not a valid DuckDB database" in result.stderr
    )
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_data_dir_is_readable_by_the_server_only(tmp_path: Path) -> None:
    """Every table, snapshot and upload lives below it: made 0700, and an existing one
    other local users could read is tightened."""
    import stat

    from agnes_mcp.services import private_data_dir

    fresh = tmp_path / "fresh" / "data"
    private_data_dir(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    private_data_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_data_dir_that_cannot_be_a_folder_is_a_setting_to_fix(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file named like the data dir, or a place below one, gave mkdir's bare error
    ("error: /srv/agnes: File exists", exit 1) and no hint."""
    from cli import exit_codes
    from cli.main import main

    taken = tmp_path / "agnes-data"
    taken.write_text("not a folder")
    for data_dir, said in ((taken, "is a file, not a folder"), (taken / "x", "Not a directory")):
        code = main([command, "--data-dir", str(data_dir), "--port", "0"])
        err = capsys.readouterr().err
        assert code == exit_codes.CONFIG and said in err, err
        assert "hint: Pass a folder this account may write with --data-dir" in err
    assert taken.read_text() == "not a folder"
