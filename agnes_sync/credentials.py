"""Where the CLI and the notebook API find the server URL and token.

In order: the ``--server-url``/``--token`` flags, the ``AGNES_SERVER_URL``/``AGNES_TOKEN``
variables, then what is stored in the user's config folder ``$AGNES_CONFIG_HOME`` (default
``~/.config/agnes``, honouring ``XDG_CONFIG_HOME``), never in a workspace:

- ``workspaces/<digest>.json``: a workspace's own entry (its path, server URL and token),
  written by ``agnes init`` (and ``agnes login --workspace``); inside that workspace (the
  ``--workspace`` folder, else the nearest folder above the current one holding ``.agnes/``)
  it is what commands use;
- ``credentials``: the user's default (``agnes login`` outside any workspace), used outside
  workspaces and by a workspace that has no entry of its own (one set up before entries
  existed). JSON ``{"server_url": ..., "token": ...}``: the file older versions wrote.

A workspace with no entry in this config folder (a process started with another ``HOME``,
``AGNES_CONFIG_HOME`` or ``XDG_CONFIG_HOME`` than ``agnes init`` ran with, or a workspace
moved or copied) still knows its server: the one its last pull came from
(``.agnes/pull-state.json``, which holds no token). That URL comes before the user's
default, whose token is then sent only if it was saved for that same server.

Both are mode 0600 in a 0700 folder. A stored token is only ever sent to the server URL it
was saved with.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
WORKSPACE_DOT = ".agnes"  # agnes_sync.workspace.layout.DOT
PULL_STATE = "pull-state.json"  # agnes_sync.pull.pull.STATE_FILE


class CredentialsError(Exception):
    """No usable credentials; the message says where they were looked for."""


@dataclass(frozen=True)
class Credentials:
    server_url: str
    token: str | None
    server_url_from: str = "--server-url"  # where the URL came from, for people
    token_from: str | None = None  # where the token came from (None: no token)
    workspace: Path | None = None  # the workspace the command runs in (None: outside any)

    def describe(self) -> dict[str, Any]:
        return {
            "server_url": self.server_url,
            "server_url_from": self.server_url_from,
            "token_from": self.token_from,
            "workspace": str(self.workspace) if self.workspace else None,
        }


def config_home() -> Path:
    explicit = os.environ.get("AGNES_CONFIG_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "agnes"


def credentials_path() -> Path:
    """The user's default credentials."""
    return config_home() / "credentials"


def workspace_entry_path(root: Path) -> Path:
    """Where the credentials of the workspace ``root`` (an absolute path) are kept."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:24]
    return config_home() / "workspaces" / f"{digest}.json"


def _read_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):  # nothing stored there
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CredentialsError(f"The credentials file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"The credentials file {path} must hold a JSON object.")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _write_json(path: Path, data: dict[str, str]) -> Path:
    """Replace ``path`` with ``data``, readable by the owner only, never half-written; a
    config folder that refuses the write is a :class:`CredentialsError` naming it and the
    variable that moves it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        for folder in (config_home(), path.parent):  # parents=True alone would make 0755
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (json.dumps(data, indent=2) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.chmod(0o600)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CredentialsError(
            f"The credentials cannot be saved in {path.parent}: "
            f"{exc.strerror or exc}. The config folder is {config_home()} (AGNES_CONFIG_HOME, "
            "else XDG_CONFIG_HOME/agnes, else ~/.config/agnes): make it writable by this "
            "account, or set AGNES_CONFIG_HOME to a folder it may write."
        ) from None
    return path


def read_file() -> dict[str, str]:
    """The user's default credentials (``{}`` when there are none)."""
    return _read_json(credentials_path())


def write_file(server_url: str, token: str) -> Path:
    """Store the user's default credentials."""
    return _write_json(credentials_path(), {"server_url": server_url, "token": token})


def read_workspace_entry(root: Path) -> dict[str, str]:
    """The entry of the workspace ``root`` (``{}`` when it has none)."""
    entry = _read_json(workspace_entry_path(root))
    return entry if entry.get("workspace") == str(root) else {}


def write_workspace_entry(root: Path, server_url: str, token: str, user: str | None) -> Path:
    entry = {"workspace": str(root), "server_url": server_url, "token": token}
    if user:
        entry["user"] = user
    return _write_json(workspace_entry_path(root), entry)


def workspace_root(explicit: str | Path | None) -> Path | None:
    """The workspace a command runs in: ``explicit`` (``--workspace``), else the nearest
    folder above the current one holding ``.agnes/``; None outside any workspace."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_DOT).is_dir():
            return folder
    return None


def _note(text: str) -> None:
    sys.stderr.write(f"note: {text}\n")


# The server's own pages that `agnes serve` and `agnes demo` print beside its URL: a URL
# copied from one of those lines is taken for the server's root (the CLI talks to that).
SERVER_PAGES = {
    "/mcp": "the MCP endpoint",
    "/api": "the REST API",
    "/api/docs": "the API reference",
    "/admin": "the admin app",
    "/auth/login": "the sign-in page",
    "/me": "your page",
    "/marketplace.git": "the plugin marketplace",
    "/marketplace.zip": "the plugin marketplace's archive",
}


def normalize_url(url: str, *, say: bool = True) -> str:
    """``url`` without a trailing ``/`` and, when it names one of the server's pages the
    banner prints (``.../mcp``, ``.../api``, ...), without that: the CLI talks to the
    server's root."""
    chosen = url.strip().rstrip("/")
    try:
        parts = urlsplit(chosen)
        hostname = parts.hostname
    except ValueError:  # "http://[::1" and the like: never a traceback
        hostname = None
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not hostname:
        raise CredentialsError(
            f"The server URL '{chosen}' is not an http(s) URL, e.g. http://127.0.0.1:8000."
            + _with_scheme(chosen)
        )
    if parts.username is not None or parts.password is not None:
        # never echoed: the password would land in a terminal's scrollback and logs
        bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        raise CredentialsError(
            f"The server URL {bare} is given with a user name or password (…@ before the "
            "host); Agnes signs in with a token, never with those: give the server's "
            "address alone, and the token with --token or AGNES_TOKEN."
        )
    # The scheme and host are case-blind: HTTP://Agnes.Example.com is the same server,
    # whose stored token, workspace entry and notebook cache folder must be found again.
    cut = len(parts.scheme) + len("://") + len(parts.netloc)
    chosen = f"{parts.scheme}://{parts.netloc.lower()}{chosen[cut:]}"
    if parts.query or parts.fragment or chosen.endswith(("?", "#")):
        # a query or fragment (copied from a browser: /auth/login?next=/admin) swallowed
        # the path the CLI adds (GET /?x=1/api/whoami)
        root = normalize_url(urlunsplit(parts._replace(query="", fragment="")), say=False)
        if say:
            _note(f"{chosen} carries a query or fragment; using the server URL {root}.")
        return root
    for page in sorted(SERVER_PAGES, key=len, reverse=True):
        if parts.path.endswith(page):
            root = chosen[: -len(page)]
            if say:
                _note(f"{chosen} is {SERVER_PAGES[page]}; using the server URL {root}.")
            return root
    return chosen


def _with_scheme(given: str) -> str:
    """' Did you mean http://HOST:PORT?' for an address given without its scheme
    (127.0.0.1:8000, agnes.example.com), else nothing."""
    if "://" in given or not given or any(c.isspace() for c in given):
        return ""
    try:
        host = urlsplit(f"http://{given}").hostname
    except ValueError:
        return ""
    if not host:
        return ""
    return f" Did you mean http://{given} (https://{given} behind TLS)?"


def clean_token(token: str, given_by: str) -> str:
    """``token`` without the blanks and line breaks a paste brings around it (a token is
    never sent with them: an HTTP header cannot hold a line break, and a space would make
    it another token); one still holding a character no token has is refused without
    echoing it (it is a secret, and would land in a terminal's scrollback and logs)."""
    cleaned = token.strip()
    if not cleaned:
        raise CredentialsError(f"The token given by {given_by} is blank.")
    if any(not ("!" <= char <= "~") for char in cleaned):
        raise CredentialsError(
            f"The token given by {given_by} holds a space, a line break or another "
            "character no token has: copy it again, whole."
        )
    return cleaned


def resolve(
    server_url: str | None,
    token: str | None,
    *,
    workspace: str | Path | None = None,
    outside: bool = False,
    given_as: tuple[str, str] = ("--server-url", "--token"),
) -> Credentials:
    """The URL and token a command uses, and where each came from. ``workspace``: the
    ``--workspace`` flag; ``outside``: act as outside any workspace (``login --global``);
    ``given_as``: how the caller names ``server_url`` and ``token`` to its user (the
    CLI's flags; a notebook's ``connect()`` arguments)."""
    root = None if outside else workspace_root(workspace)
    url_flag, token_flag = given_as
    url, url_from = server_url, url_flag
    if not url and os.environ.get("AGNES_SERVER_URL"):
        url, url_from = os.environ["AGNES_SERVER_URL"], "AGNES_SERVER_URL"
    tok, tok_from = token, token_flag
    if not tok and os.environ.get("AGNES_TOKEN"):
        tok, tok_from = os.environ["AGNES_TOKEN"], "AGNES_TOKEN"
    if tok:
        tok = clean_token(tok, tok_from)
    chosen = normalize_url(url) if url else None
    if chosen and tok:
        return Credentials(chosen, tok, url_from, tok_from, root)

    stored, stored_from = _stored(root)
    stored_url = normalize_url(stored["server_url"], say=False) if "server_url" in stored else None
    if chosen is None:
        pulled = _last_pulled_from(root) if stored_from.startswith("user default") else None
        if pulled:
            chosen, url_from = pulled
        elif stored_url:
            chosen, url_from = stored_url, stored_from
        else:
            chosen, url_from = normalize_url(DEFAULT_SERVER_URL), "built-in default"
    if tok:
        return Credentials(chosen, tok, url_from, tok_from, root)
    if stored.get("token") and stored_url == chosen:
        return Credentials(chosen, stored["token"], url_from, stored_from, root)
    if stored.get("token"):
        _note(
            f"the token of the {stored_from} was saved for {stored_url}; it is not sent to "
            f"{chosen}. Pass {token_flag}, or 'agnes login' to that server."
        )
    elif root is not None and url_from.startswith("workspace's last pull"):
        _note(
            f"the workspace {root} last pulled from {chosen}, but no token for it is stored "
            f"in {config_home()} (the config folder of this process: HOME, "
            "AGNES_CONFIG_HOME or XDG_CONFIG_HOME may differ from where 'agnes init' ran). "
            f"Pass {token_flag} or AGNES_TOKEN, or run 'agnes login --workspace {root} "
            f"--server-url {chosen} --token <token>' in this environment."
        )
    return Credentials(chosen, None, url_from, None, root)


def _last_pulled_from(root: Path | None) -> tuple[str, str] | None:
    """The server the workspace ``root`` last pulled from, and where that is recorded
    (None outside a workspace, before its first pull, or when the record is unreadable)."""
    if root is None:
        return None
    path = root / WORKSPACE_DOT / PULL_STATE
    try:
        url = json.loads(path.read_text(encoding="utf-8")).get("server_url")
        return (normalize_url(url, say=False), f"workspace's last pull {path}") if url else None
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, CredentialsError):
        return None


def _stored(root: Path | None) -> tuple[dict[str, str], str]:
    """The stored credentials for the workspace ``root`` (its entry, else the user's
    default) and a description of where they are."""
    if root is not None:
        entry = read_workspace_entry(root)
        if entry:
            return entry, f"workspace entry {workspace_entry_path(root)}"
    return read_file(), f"user default {credentials_path()}"
