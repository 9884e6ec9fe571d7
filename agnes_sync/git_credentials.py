"""Letting the user's own ``git`` sign in to the Agnes server, with no token in a URL or
a settings file.

Claude Code clones a marketplace with the user's ``git``; the Agnes feed
(``<server>/marketplace.git``) asks for the personal access token as an HTTP Basic
password. :func:`register` stores that token with git's own credential store in the
Agnes config folder (``$AGNES_CONFIG_HOME/git-credentials``, mode 0600, fed on stdin)
and points the user's *global* git config at it for the server's URL only::

    [credential "https://agnes.example.com"]
        helper =
        helper = store --file=/home/me/.config/agnes/git-credentials

The empty value resets the helpers configured before it for that URL, so a keychain
helper neither answers for nor keeps a copy of the Agnes token. Running it again
changes nothing; a new token replaces the old one (one token per server and machine).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agnes_sync.credentials import config_home
from agnes_sync.errors import AgnesError

STORE_FILE = "git-credentials"
USERNAME = "agnes"  # the feed accepts any user name; the token is the password


class GitNotFound(AgnesError):
    code = "git_not_found"
    status = 500
    default_hint = "Install git (https://git-scm.com/downloads), then run 'agnes init' again."


class GitCommandFailed(AgnesError):
    code = "git_failed"
    status = 500


@dataclass(frozen=True)
class GitCredential:
    """What :func:`register` did: where the token is, which config key points at it."""

    scope: str  # the URL the helper applies to (the server's URL)
    store: Path  # git's credential store file holding the token
    config: str | None  # the global git config file that was changed (None: unchanged)
    config_key: str
    helper: str
    changed: bool  # the git config changed (the stored token is always rewritten)

    def as_dict(self) -> dict[str, object]:
        return {
            "scope": self.scope,
            "store": str(self.store),
            "config": self.config,
            "config_key": self.config_key,
            "helper": self.helper,
            "config_changed": self.changed,
        }


def store_path() -> Path:
    return config_home() / STORE_FILE


def git_binary() -> str:
    found = shutil.which("git")
    if found is None:
        raise GitNotFound("The git command is not installed; Claude Code needs it for plugins.")
    return found


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Run the user's ``git ARGS`` with their environment (plus ``env``), never prompting
    on a terminal; the caller checks the exit code."""
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    return subprocess.run(  # noqa: S603 - a fixed binary and argument list, no shell
        [git_binary(), *args],
        cwd=cwd,
        env=environment,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _checked(args: Sequence[str], *, input_text: str | None = None, what: str) -> str:
    done = run_git(args, input_text=input_text, timeout=60)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise GitCommandFailed(f"git could not {what}: {reason[0]}")
    return done.stdout


def _credential(server_url: str, password: str | None = None) -> str:
    """The credential description git's helpers read on stdin (protocol and host only:
    git does not match on paths for http unless asked to)."""
    parts = urlsplit(server_url)
    lines = [f"protocol={parts.scheme}", f"host={parts.netloc}", f"username={USERNAME}"]
    if password is not None:
        lines.append(f"password={password}")
    return "\n".join(lines) + "\n\n"


def register(server_url: str, token: str) -> GitCredential:
    """Store ``token`` for ``server_url`` and point the global git config at it."""
    store = store_path()
    config_home().mkdir(parents=True, exist_ok=True, mode=0o700)
    # One token per server: forget what was stored for it (any user name), then store.
    parts = urlsplit(server_url)
    forget = f"protocol={parts.scheme}\nhost={parts.netloc}\n\n"
    if store.exists():
        _checked(["credential-store", f"--file={store}", "erase"], input_text=forget, what="erase")
    _checked(
        ["credential-store", f"--file={store}", "store"],
        input_text=_credential(server_url, token),
        what=f"store the token in {store}",
    )
    store.chmod(0o600)  # credential-store makes it 0600; say so whatever the umask was

    key = f"credential.{server_url}.helper"
    helper = f"store --file={shlex.quote(str(store))}"
    current = run_git(["config", "--global", "--get-all", key]).stdout.splitlines()
    changed = current != ["", helper]
    if changed:
        if current:
            _checked(["config", "--global", "--unset-all", key], what=f"reset {key}")
        _checked(["config", "--global", "--add", key, ""], what=f"set {key}")
        _checked(["config", "--global", "--add", key, helper], what=f"set {key}")
    return GitCredential(
        scope=server_url,
        store=store,
        config=global_config_file(key) if changed else None,
        config_key=key,
        helper=helper,
        changed=changed,
    )


def global_config_file(key: str) -> str | None:
    """The file of the global git config holding ``key`` (``GIT_CONFIG_GLOBAL`` or
    ``~/.gitconfig``), for telling the user what was changed."""
    done = run_git(["config", "--global", "--show-origin", "--get-all", key])
    first = done.stdout.splitlines()[:1]
    if done.returncode != 0 or not first:
        return None
    origin = first[0].split("\t", 1)[0]
    return origin.removeprefix("file:")
