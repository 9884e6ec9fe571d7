"""Fetching an upstream marketplace repository into its bare mirror, and resolving the ref.

The mirror (``<slug>/repo.git``) has no remote in its config: the URL is given on the
fetch's command line each time, after :func:`check_fetch_url` checked it again (a host
name may point somewhere else since it was added), and git connects only to the addresses
that check saw (``http.curloptResolve``: it never resolves the name itself). Upstream
refs land under ``refs/agnes/`` and are updated atomically when a pack has arrived whole,
so a fetch that dies halfway changes no ref. A read token reaches git only through a
credential helper set in the git process's environment (``GIT_CONFIG_*``) and scoped to
the URL's origin; the helper reads the token from that process's environment, so it is
on no command line and in no file, and git's messages are scrubbed of it anyway.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agnes_mcp.errors import MarketplaceFetchFailed, MarketplaceRepoInvalid
from agnes_mcp.marketplace.git_command import GitProcesses, git_env, run_git
from agnes_mcp.marketplace.token_policy import check_token_env
from agnes_mcp.marketplace.url_policy import check_fetch_url
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.marketplaces import Marketplace
from agnes_sync.errors import AgnesError
from agnes_sync.human_size import human_size

# The variable the credential helper reads in the git process (a fixed name, so a token
# variable called PATH or HOME can never replace the git process's own).
TOKEN_VARIABLE = "AGNES_GIT_TOKEN"  # noqa: S105 - a variable name, not a secret
DEFAULT_USERNAME = "x-access-token"
_HEAD = "refs/agnes/HEAD"
_REFSPECS = ("+refs/heads/*:refs/agnes/heads/*", "+refs/tags/*:refs/agnes/tags/*")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_TAIL_LINES = 4


@dataclass(frozen=True)
class Credentials:
    """How git authenticates to one origin: the helper's config and its environment."""

    config: dict[str, str]
    extra_env: dict[str, str]
    variable: str  # the server's variable named by --token-env (for messages)
    secret: str  # scrubbed from every message


def fetch_upstream(
    settings: AgnesSettings,
    mirror: Path,
    marketplace: Marketplace,
    processes: GitProcesses | None = None,
) -> None:
    """Fetch every branch and tag of the marketplace's URL into ``mirror`` (and HEAD, the
    default branch, when no ref is pinned); the fetch is one of ``processes``."""
    allow_local = settings.marketplace.allow_local
    checked = check_fetch_url(marketplace.url, allow_local=allow_local)
    url = checked.url
    credentials = _credentials(marketplace, url, settings)
    ensure_mirror(mirror)
    protocols = ("https", "http", "file") if allow_local else ("https",)
    config = {
        "fetch.fsckObjects": "true",  # refuse malformed objects ('..' or '.git' in a tree)
        "fetch.fsck.zeroPaddedFilemode": "ignore",  # harmless, and common in old histories
        # Every fetch lands as one pack (never as loose objects, up to 99 of any size),
        # so max_fetch_bytes bounds all it writes.
        "fetch.unpackLimit": "1",
        "gc.autoDetach": "false",  # no gc left running in the mirror after the fetch
        "maintenance.autoDetach": "false",
        # A redirect could lead to a host the URL rules never saw (the server's own network).
        "http.followRedirects": "false",
        # Only to the addresses just checked: a second look-up could answer another one.
        **({"http.curloptResolve": checked.pinned} if checked.pinned else {}),
        **(credentials.config if credentials else {}),
    }
    env = git_env(config, protocols=protocols, extra=credentials.extra_env if credentials else None)
    args = ["--git-dir", str(mirror), "fetch", "--prune", "--no-tags", "--atomic"]
    args += ["--no-write-fetch-head", "--quiet", "--", url, *_REFSPECS]
    if default_branch(marketplace.ref):  # whatever it is called
        args.append(f"+HEAD:{_HEAD}")
    timeout = settings.marketplace.git_timeout_seconds
    most = int(settings.marketplace.max_fetch_bytes)
    try:
        try:
            done = run_git(args, env=env, timeout=timeout, processes=processes, max_file_bytes=most)
        finally:
            # A fetch that failed or was killed mid-pack (a timeout, a size past the limit,
            # a server stopping) leaves git's temporary pack behind: it is never used.
            discard_partial_packs(mirror)
    except subprocess.TimeoutExpired:
        raise MarketplaceFetchFailed(
            f"Fetching {url} took longer than {timeout:g} seconds and was stopped.",
            hint="The last good sync stays served. Check the host, or raise the setting "
            "marketplace.git_timeout_seconds.",
        ) from None
    if done.returncode != 0:
        said = _scrub(done.stderr, credentials)
        if "file too large" in said.lower():
            raise MarketplaceRepoInvalid(
                f"Fetching {url} brought more than {human_size(most)} "
                f"(marketplace.max_fetch_bytes) and was stopped; nothing of it was kept.",
                hint="The last good sync stays served. A marketplace should hold plugins, "
                "not large files: slim the repository's history, or raise the setting.",
            )
        raise _fetch_error(url, said, credentials)


def discard_partial_packs(mirror: Path) -> None:
    """Remove what an unfinished fetch left in ``mirror``: git's temporary pack and index
    files (a finished fetch renames them; one fetch of a marketplace runs at a time)."""
    pack = mirror / "objects" / "pack"
    for leftover in [*pack.glob("tmp_pack_*"), *pack.glob("tmp_idx_*")]:
        leftover.unlink(missing_ok=True)


def ensure_mirror(mirror: Path) -> None:
    """A bare repository at ``mirror`` (created empty, with no remote configured)."""
    if (mirror / "HEAD").is_file():
        return
    mirror.parent.mkdir(parents=True, exist_ok=True)
    done = run_git(["init", "--quiet", "--bare", str(mirror)], env=git_env(protocols=()))
    if done.returncode != 0:
        raise MarketplaceFetchFailed(
            f"Could not create the repository mirror {mirror}: "
            f"{_tail(done.stderr.decode(errors='replace'))}",
            hint="Check that the server can write to DATA_DIR/marketplaces.",
        )


def default_branch(ref: str | None) -> bool:
    """Whether ``ref`` names the upstream's default branch: none given, or ``HEAD``."""
    return ref is None or ref == "HEAD"


def resolve_ref(mirror: Path, ref: str | None) -> str:
    """The commit to serve: upstream HEAD, a full SHA, else a branch, else a tag. A full
    ref name (``refs/heads/main``, ``refs/tags/v1``) names that branch or tag alone."""
    if ref is None or default_branch(ref):
        commit = _commit_of(mirror, _HEAD)
        if commit is None:
            raise MarketplaceFetchFailed(
                "The repository has no default branch (HEAD) to sync: it may be empty.",
                hint="Push a commit to it, or register it with --ref BRANCH.",
            )
        return commit
    candidates = [ref] if _FULL_SHA.match(ref) else []
    if ref.startswith(("refs/heads/", "refs/tags/")):  # where the fetch put them
        candidates.append(f"refs/agnes/{ref.removeprefix('refs/')}")
    else:
        candidates += [f"refs/agnes/heads/{ref}", f"refs/agnes/tags/{ref}"]
    for candidate in candidates:
        commit = _commit_of(mirror, candidate)
        if commit is not None:
            return commit
    raise MarketplaceFetchFailed(
        f"The repository has no branch, tag or commit '{ref}'.",
        hint="Check the ref (a pinned commit must be a full 40-hex SHA reachable from a "
        "branch or tag), or change it: remove and add the marketplace again.",
    )


def _commit_of(mirror: Path, name: str) -> str | None:
    done = run_git(
        [
            "--git-dir",
            str(mirror),
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{name}^{{commit}}",
        ],
        env=git_env(protocols=()),
    )
    text = done.stdout.decode().strip()
    return text if done.returncode == 0 and _FULL_SHA.match(text) else None


def _credentials(marketplace: Marketplace, url: str, settings: AgnesSettings) -> Credentials | None:
    variable = marketplace.token_env
    if variable is None:
        return None
    try:  # registered before the operator's list changed: refused before git sends it
        check_token_env(variable, settings.marketplace)
    except AgnesError as exc:
        raise MarketplaceFetchFailed(exc.message, hint=exc.hint) from None
    secret = os.environ.get(variable, "")
    if not secret.strip():
        raise MarketplaceFetchFailed(
            f"The environment variable {variable} (the read token of marketplace "
            f"'{marketplace.slug}') is not set or empty on the server.",
            hint=f"Set {variable} in the server's environment and restart it, or register the "
            "marketplace without --token-env if the repository is public.",
        )
    if any(ord(c) < 32 for c in secret.strip()):
        raise MarketplaceFetchFailed(
            f"The environment variable {variable} holds a line break or control character; "
            "git cannot send it as a password.",
            hint=f"Set {variable} to the token alone.",
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        return None  # a local repository takes no token
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    username = shlex.quote(marketplace.username or DEFAULT_USERNAME)
    helper = (
        '!f() { test "$1" = get || exit 0; '
        f"printf 'username=%s\\npassword=%s\\n' {username} \"${TOKEN_VARIABLE}\"; }}; f"
    )
    return Credentials(
        config={f"credential.{origin}.helper": helper},
        extra_env={TOKEN_VARIABLE: secret.strip()},
        variable=variable,
        secret=secret.strip(),
    )


def _scrub(stderr: bytes, credentials: Credentials | None) -> str:
    text = stderr.decode(errors="replace")
    if credentials is not None:
        text = text.replace(credentials.secret, "***")
    return text


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[-_TAIL_LINES:]) or "no message from git"


def _fetch_error(url: str, stderr: str, credentials: Credentials | None) -> AgnesError:
    low = stderr.lower()
    said = _tail(stderr)
    if (
        "authentication failed" in low
        or "could not read username" in low
        or "returned error: 401" in low
        or "returned error: 403" in low
    ):
        if credentials is not None:
            return MarketplaceFetchFailed(
                f"{url} refused the token in ${credentials.variable}.",
                hint=f"Check that ${credentials.variable} holds a valid read token for this "
                "repository (and --username if the host needs one).",
            )
        return MarketplaceFetchFailed(
            f"{url} needs a token: it asked for credentials.",
            hint="Put a read token in an environment variable of the server and name it: "
            "register the marketplace again with --token-env NAME.",
        )
    if re.search(r"returned error: 30[1278]", low) or "redirect" in low:
        return MarketplaceFetchFailed(
            f"{url} answered with a redirect; the server does not follow redirects (they could "
            "lead to a host the URL rules never checked).",
            hint="Register the URL the repository lives at now (e.g. after a rename).",
        )
    if (
        "not found" in low
        or "does not appear to be a git repository" in low
        or "returned error: 404" in low
    ):
        return MarketplaceFetchFailed(
            f"There is no repository at {url} (or the token cannot see it).",
            hint="Check the URL (and that the token may read the repository).",
        )
    if "fsck error" in low or "fsck:" in low:
        return MarketplaceRepoInvalid(
            f"{url} holds a malformed git object, refused by git's checks: {said}",
            hint="A tree entry named '..' or '.git', or a broken object: fix the history "
            "upstream (the last good sync stays served).",
        )
    if "couldn't find remote ref" in low:
        return MarketplaceFetchFailed(
            f"{url} has no default branch to fetch: {said}",
            hint="Push a commit to the repository's default branch.",
        )
    if "transport '" in low and "not allowed" in low:
        return MarketplaceFetchFailed(
            f"{url} uses a transport this server does not fetch: {said}",
            hint="Give an https:// URL.",
        )
    network = (
        "could not resolve",
        "failed to connect",
        "connection refused",
        "timed out",
        "rpc failed",
        "early eof",
        "unexpected disconnect",
        "transfer closed",
        "connection reset",
        "ssl",
        "bad pack header",
    )
    if any(word in low for word in network):
        return MarketplaceFetchFailed(
            f"The network failed while fetching {url}: {said}",
            hint="The last good sync stays served; the next sync tries again.",
        )
    return MarketplaceFetchFailed(
        f"git could not fetch {url}: {said}",
        hint="The last good sync stays served; check the URL and the server's log.",
    )
