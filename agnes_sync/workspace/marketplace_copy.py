"""The workspace's copy of the server's plugin feed: ``<workspace>/.agnes/marketplace/``,
a git clone of ``<server>/marketplace.git`` made and refreshed with the user's ``git``.

The token reaches git through a credential helper given on the command line that reads
it from an environment variable (``AGNES_GIT_TOKEN``): it is never in an argument, the
remote URL or the clone's ``.git/config``. Each refresh fetches the feed's ``HEAD`` and
resets the copy to it (:func:`move_to_feed`: a feed with other grants is another root
commit, unrelated to the last one, so never a merge), so a plugin whose grant was revoked
is gone from the copy after the next refresh. Claude Code's own clone of the feed is
moved the same way (:mod:`agnes_sync.workspace.claude_marketplace_clone`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from agnes_sync.errors import AgnesError
from agnes_sync.git_credentials import USERNAME, run_git
from agnes_sync.workspace.layout import WorkspacePaths
from agnes_sync.workspace.lock import workspace_lock

FOLDER = "marketplace"
MARKETPLACE_JSON = ".claude-plugin/marketplace.json"
TOKEN_VARIABLE = "AGNES_GIT_TOKEN"  # noqa: S105 - the name of the variable, not a token
# Answers git's "get" with the token from the environment; ignores "store" and "erase".
_HELPER = (
    f"!f() {{ test \"$1\" = get && printf 'username={USERNAME}\\npassword=%s\\n' "
    f'"${TOKEN_VARIABLE}"; }}; f'
)


class MarketplaceRefreshFailed(AgnesError):
    code = "marketplace_refresh_failed"
    status = 502
    default_hint = "Check that the server is up and your token works ('agnes whoami')."


class MarketplaceUnavailable(AgnesError):
    code = "marketplace_unavailable"
    status = 404
    default_hint = "Ask your admin to upgrade Agnes: this server has no plugin marketplace."


class MarketplaceRefreshBusy(AgnesError):
    code = "marketplace_refresh_running"
    status = 409
    default_hint = "Wait for the other 'agnes marketplace refresh' in this workspace to finish."


@dataclass(frozen=True)
class CopyRefreshed:
    path: Path
    commit: str
    plugins: list[str]  # the names in the copy's marketplace.json, sorted
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    cloned: bool = False  # True: a first clone (no earlier copy)


def copy_path(paths: WorkspacePaths) -> Path:
    return paths.dot / FOLDER


def plugin_names(folder: Path) -> list[str]:
    """The plugin names listed in the copy's marketplace.json ([] without a copy)."""
    try:
        document = json.loads((folder / MARKETPLACE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    plugins = document.get("plugins") if isinstance(document, dict) else None
    if not isinstance(plugins, list):
        return []
    return sorted(str(p["name"]) for p in plugins if isinstance(p, dict) and "name" in p)


def feed_git(args: list[str], token: str, *, cwd: Path | None = None, what: str) -> str:
    """``git ARGS`` with the token offered to the feed through the environment only."""
    done = run_git(
        ["-c", "credential.helper=", "-c", f"credential.helper={_HELPER}", *args],
        cwd=cwd,
        env={TOKEN_VARIABLE: token},
    )
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        said = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
        reason = said[-1] if said else f"exit code {done.returncode}"
        raise MarketplaceRefreshFailed(f"git could not {what}: {reason}")
    return done.stdout.strip()


def move_to_feed(folder: Path, git_url: str, token: str) -> str:
    """Fetch the feed's ``HEAD`` into the clone ``folder`` (a clone of the feed) and reset
    its branch and files to it; the commit it is at now. The fetch names ``git_url``, not
    ``origin``: a user name and password in the origin's URL are not sent, the token is."""
    feed_git(["fetch", "--quiet", git_url, "HEAD"], token, cwd=folder, what=f"fetch {git_url}")
    feed_git(["reset", "--quiet", "--hard", "FETCH_HEAD"], token, cwd=folder, what="reset")
    return feed_git(["rev-parse", "HEAD"], token, cwd=folder, what="read the commit")


def refresh_copy(paths: WorkspacePaths, git_url: str, token: str) -> CopyRefreshed:
    """Clone the feed (first time) or fetch it and reset the copy to it."""
    folder = copy_path(paths)
    with workspace_lock(paths, "marketplace.lock", MarketplaceRefreshBusy):
        before = plugin_names(folder)
        cloned = not (folder / ".git").is_dir()
        if cloned:
            staged = paths.dot / f".{FOLDER}.clone"
            shutil.rmtree(staged, ignore_errors=True)
            try:
                feed_git(["clone", "--quiet", git_url, str(staged)], token, what=f"clone {git_url}")
                shutil.rmtree(folder, ignore_errors=True)  # a broken copy without .git
                staged.rename(folder)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
        else:
            set_url = ["remote", "set-url", "origin", git_url]
            feed_git(set_url, token, cwd=folder, what="set the URL")
            move_to_feed(folder, git_url, token)
            feed_git(["clean", "--quiet", "-d", "-x", "--force"], token, cwd=folder, what="clean")
        commit = feed_git(["rev-parse", "HEAD"], token, cwd=folder, what="read the commit")
        after = plugin_names(folder)
    return CopyRefreshed(
        path=folder,
        commit=commit,
        plugins=after,
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        cloned=cloned,
    )
