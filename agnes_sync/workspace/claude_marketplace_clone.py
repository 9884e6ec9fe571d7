"""Claude Code's own clone of the server's marketplace, brought to the caller's feed.

Claude Code keeps a git clone of every marketplace it knows
(``<claude config dir>/plugins/marketplaces/<name>/``, or the ``installLocation`` its
``plugins/known_marketplaces.json`` names; the config dir is ``$CLAUDE_CONFIG_DIR``,
default ``~/.claude``) and refreshes it with a fast-forward ``git pull``. A feed is one
root commit per content (the same grants, the same commit id), so after a grant changes
the feed's ``main`` is a commit unrelated to the clone's and that pull fails: Claude Code
would keep offering a revoked plugin. :func:`bring_to_feed` moves the clone to the feed
with a fetch and a hard reset instead, as the workspace copy is moved
(:func:`~agnes_sync.workspace.marketplace_copy.move_to_feed`, the token through the
environment only).

It only touches a folder that is a git clone whose ``origin`` is the feed's URL (with or
without a user name and password in it: the fetch names the feed's URL itself, so the
workspace's token is the one sent); anything else is left alone and said why. Untracked
files are not removed: the folder is Claude Code's, and a reset already removes every
file of the last feed that this one lacks.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from agnes_sync.credentials import config_home
from agnes_sync.git_credentials import run_git
from agnes_sync.push import claude_home
from agnes_sync.workspace.marketplace_copy import MarketplaceRefreshFailed, move_to_feed

KNOWN_MARKETPLACES = "known_marketplaces.json"
LOCK_FILE = "claude-marketplace.lock"
NOT_ADDED = "not added to Claude Code yet"

Outcome = Literal["updated", "current", "absent", "skipped", "failed"]


@dataclass(frozen=True)
class ClaudeClone:
    """What became of Claude Code's clone: ``updated`` (moved to the feed), ``current``
    (already there), ``absent`` (Claude Code has not added the marketplace), ``skipped``
    (not a clone of this feed: left alone) or ``failed`` (git could not move it)."""

    path: Path
    outcome: Outcome
    commit: str | None  # the clone's commit now (None: no clone)
    message: str

    @property
    def updated(self) -> bool:
        return self.outcome == "updated"

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "outcome": self.outcome,
            "updated": self.updated,
            "commit": self.commit,
            "message": self.message,
        }


def clone_path(name: str) -> Path:
    """Where Claude Code keeps marketplace ``name``: the ``installLocation`` of its entry
    in ``known_marketplaces.json``, else ``<claude config dir>/plugins/marketplaces/<name>``."""
    plugins = claude_home() / "plugins"
    try:
        known = json.loads((plugins / KNOWN_MARKETPLACES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = None
    entry = known.get(name) if isinstance(known, dict) else None
    location = entry.get("installLocation") if isinstance(entry, dict) else None
    if isinstance(location, str) and location:
        return Path(location).expanduser()
    return plugins / "marketplaces" / name


def _shown(url: str) -> str:
    """``url`` without any user name or password in it, for a message."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


@contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Sessions of several workspaces may start together: one mover of the clone at a
    time (a blocking lock in the Agnes config folder, released when the process ends)."""
    folder = config_home()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _head(folder: Path) -> str | None:
    done = run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=folder, timeout=60)
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def bring_to_feed(name: str, git_url: str, token: str) -> ClaudeClone:
    """Move Claude Code's clone of marketplace ``name`` to the feed at ``git_url``."""
    folder = clone_path(name)
    if not folder.exists():
        return ClaudeClone(folder, "absent", None, NOT_ADDED)
    if not (folder / ".git").exists():
        return ClaudeClone(folder, "skipped", None, "not a git clone; left alone")
    with _one_at_a_time():
        origin = run_git(["config", "--get", "remote.origin.url"], cwd=folder, timeout=60)
        url = origin.stdout.strip()
        before = _head(folder)
        if origin.returncode != 0 or not url:
            return ClaudeClone(folder, "skipped", before, "it has no origin; left alone")
        # A user name or password in the URL (``claude plugin marketplace add
        # https://x:TOKEN@host/marketplace.git``) does not make it another feed.
        if not _same_url(_shown(url), git_url):
            return ClaudeClone(
                folder,
                "skipped",
                before,
                f"its origin is {_shown(url)}, not {git_url}; left alone",
            )
        try:
            after = move_to_feed(folder, git_url, token)
        except MarketplaceRefreshFailed as exc:
            return ClaudeClone(folder, "failed", _head(folder), f"not updated: {exc.message}")
    if after == before:
        return ClaudeClone(folder, "current", after, "already at the feed's commit")
    was = f"from {before[:12]} " if before else ""
    return ClaudeClone(folder, "updated", after, f"moved {was}to {after[:12]}")
