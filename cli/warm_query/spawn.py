"""Starting a workspace's warm server: a new session, stdin and stdout on /dev/null,
stderr on a log in the runtime folder, no other inherited file (a CI job's pipes stay
free), and no secret on its command line (``ps`` shows the socket's name and the
workspace folder only; credentials come from the environment, as for the CLI)."""

# os.path: the warm path's modules do without pathlib
# ruff: noqa: PTH118

from __future__ import annotations

import fcntl
import os
import subprocess
import sys


def lock_is_held(lock: str) -> bool:
    """A server (running or starting) holds ``lock``."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return True  # cannot tell: do not start another
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def spawn_server(runtime: str, name: str, root: str) -> None:
    if lock_is_held(os.path.join(runtime, f"{name}.lock")):
        return
    try:
        log = os.open(
            os.path.join(runtime, f"{name}.log"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
            0o600,
        )
    except OSError:
        return
    try:
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            # -P: the workspace folder is never on the server's import path.
            [sys.executable, "-P", "-m", "cli.warm_query.server", name, root],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
            close_fds=True,
            start_new_session=True,
        )
    except OSError:
        pass  # no server: every call keeps running in process
    finally:
        os.close(log)
