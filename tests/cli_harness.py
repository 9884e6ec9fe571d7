"""Running the CLI in-process inside a pulled analyst workspace (shared by CLI tests)."""

from __future__ import annotations

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
