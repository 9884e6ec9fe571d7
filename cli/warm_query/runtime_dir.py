"""The per-user folder of the warm query servers' sockets, locks and status files:
``$XDG_RUNTIME_DIR/agnes``, else ``/tmp/agnes-<uid>``; created 0700 and never used when
another user owns it or it is open to others (a symlink, a wider mode)."""

# os.path, not pathlib: pathlib costs ~7 ms of import on the warm path
# ruff: noqa: PTH102, PTH118

from __future__ import annotations

import os
import stat


def runtime_dir() -> str:
    base = os.environ.get("XDG_RUNTIME_DIR")
    # /tmp is shared: the folder is used only once is_private() says it is ours alone.
    return os.path.join(base, "agnes") if base else f"/tmp/agnes-{os.getuid()}"  # noqa: S108


def is_private(folder: str | os.PathLike[str]) -> bool:
    """``folder`` is a real directory (not a symlink) of this user, closed to others."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def safe_runtime_dir(create: bool = True) -> str | None:
    """The runtime folder, created if missing; ``None`` when it is not safe to use."""
    folder = runtime_dir()
    if create:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    return folder if is_private(folder) else None
