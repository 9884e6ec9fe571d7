"""The test suite keeps the files of the libraries it drives out of the user's home."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_matplotlib_keeps_its_config_and_font_cache_in_the_sessions_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import matplotlib

    session = tmp_path_factory.getbasetemp()
    assert Path(matplotlib.get_configdir()).is_relative_to(session)
    assert Path(matplotlib.get_cachedir()).is_relative_to(session)
