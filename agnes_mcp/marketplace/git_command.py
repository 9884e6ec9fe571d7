"""Running the ``git`` binary with a clean, locked-down environment.

Every git process Agnes starts (fetching upstream repositories, building feed
repositories, serving ``git http-backend``) goes through :func:`git_env`: no system or
user config is read, git never prompts, only the protocols asked for are allowed, and
extra configuration travels in ``GIT_CONFIG_*`` variables, so nothing (a credential
helper, a setting) is written to a repository's ``config`` or shown on a command line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from agnes_mcp.errors import MarketplaceFetchFailed
from agnes_sync.caller import Caller

# Variables passed through from the server's environment (locale and temp dirs only).
_PASS_THROUGH = ("PATH", "TMPDIR", "LANG", "LC_ALL", "SYSTEMROOT")


def git_binary() -> str:
    """The path of ``git``, or an error saying it is needed."""
    found = shutil.which("git")
    if found is None:
        raise MarketplaceFetchFailed(
            "The git command is not installed on the server.",
            hint="Install git (e.g. 'apt-get install git'): marketplaces need it.",
        )
    return found


def git_env(
    config: Mapping[str, str] | None = None,
    *,
    protocols: Sequence[str] = ("https",),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for one git process. ``config`` becomes ``-c``-like settings
    through ``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``; ``extra`` adds variables (e.g. the
    one variable holding a token that a credential helper reads)."""
    env = {name: os.environ[name] for name in _PASS_THROUGH if name in os.environ}
    env.update(
        {
            "HOME": os.devnull,  # no ~/.gitconfig, no ~/.git-credentials
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_ALLOW_PROTOCOL": ":".join(protocols),
            "LC_ALL": "C",
        }
    )
    items = list((config or {}).items())
    env["GIT_CONFIG_COUNT"] = str(len(items))
    for index, (key, value) in enumerate(items):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env.update(extra or {})
    return env


class GitProcesses:
    """The git processes one owner started, stopped together when it stops: a server
    shutting down kills a fetch waiting on a slow host instead of waiting for it (up to
    ``marketplace.git_timeout_seconds``), and one started after that at once."""

    def __init__(self) -> None:
        self._owner = Caller()  # what a caller that gave up is to its work

    def stop(self) -> None:
        self._owner.cancel()

    @contextlib.contextmanager
    def held(self, process: subprocess.Popen[bytes]) -> Iterator[None]:
        self._owner.on_cancel(process, lambda: _kill_group(process))
        try:
            yield
        finally:
            self._owner.discard(process)


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    timeout: float = 300.0,
    processes: GitProcesses | None = None,
    max_file_bytes: int | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` and return the finished process (the caller checks the code).

    git runs in a process group of its own, and on a timeout the whole group is killed:
    ``git fetch`` works through children (``git-remote-https``) that would otherwise keep
    a stalled connection open after git itself was stopped. With ``processes``, it is
    killed too when they are stopped. With ``max_file_bytes``, the kernel refuses git (and
    its children) a write past that size in any one file (``RLIMIT_FSIZE``): git fails
    "File too large" and removes what it was writing."""
    command = [git_binary(), *args]
    if max_file_bytes:
        command = [*_within_file_size(max_file_bytes), *command]
    with (
        subprocess.Popen(  # noqa: S603 - a fixed binary and argument list, no shell
            command,
            cwd=cwd,
            env=dict(env) if env is not None else git_env(),
            stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        ) as process,
        processes.held(process) if processes is not None else contextlib.nullcontext(),
    ):
        try:
            stdout, stderr = process.communicate(input_bytes, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise
        except BaseException:
            _kill_group(process)
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


# Through the shell, so no Python runs between fork and exec (a preexec_fn there crashed
# in a process of many threads): the limit is set, SIGXFSZ ignored (git then fails a
# write with EFBIG and says "File too large" instead of dying mid-file), and git exec'd.
_LIMITED = 'ulimit -f "$1" || exit 125; trap "" XFSZ; shift; exec "$@"'


def _within_file_size(max_bytes: int) -> list[str]:
    """The command prefix under which no file is written past ``max_bytes`` (POSIX
    ``ulimit -f`` counts 512-byte blocks; the limit is rounded down to one)."""
    return ["/bin/sh", "-c", _LIMITED, "sh", str(max(1, max_bytes // 512))]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
