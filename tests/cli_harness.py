"""Running the CLI in-process inside a pulled analyst workspace (shared by CLI tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cli.main import main
from tests.conftest import DemoServer, pull_into_workspace


@pytest.fixture
def workspace(demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace pulled as the analyst, the current folder, credentials from the env."""
    folder = pull_into_workspace(
        demo_server.live.base_url, demo_server.analyst_token, tmp_path / "ws"
    )
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    monkeypatch.chdir(folder)
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``agnes <argv>``."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# The CLI under a file-size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ): the kernel
# refuses a write past it with EFBIG, as a full disk refuses with ENOSPC. Set in the child
# itself: a preexec_fn is not safe in a test process running a server's threads.
_LIMITED = (
    "import resource, sys; from cli.main import run; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)), "
    "resource.getrlimit(resource.RLIMIT_FSIZE)[1])); run()"
)


def limited_command(file_size_limit: int, *argv: str) -> list[str]:
    """``agnes <argv>`` in a process of its own that may write no file past
    ``file_size_limit`` bytes."""
    return [sys.executable, "-c", _LIMITED, str(file_size_limit), *argv]
