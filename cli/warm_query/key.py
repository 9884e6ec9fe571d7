"""Which warm server may answer a request: one per workspace root, interpreter, installed
Agnes (version and a fingerprint of its code) and every environment variable that changes
what a query prints. A different key is a different server (the old one idles out).

The key is hashed: the socket's name says nothing of the environment (tokens included).
"""

# os.path, not pathlib: pathlib costs ~7 ms of import on the warm path
# ruff: noqa: PTH109, PTH112, PTH118, PTH120

from __future__ import annotations

import hashlib
import json
import os
import sys

PACKAGES = ("cli", "agnes_mcp", "agnes_sync")
ENV_NAMES = frozenset(
    {
        "HOME",
        "TZ",
        "LANG",
        "LANGUAGE",
        "NO_COLOR",
        "FORCE_COLOR",
        "COLUMNS",
        "LINES",
        "TERM",
        "COLORTERM",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
        "UNICODE_VERSION",
        "TMPDIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    }
)
ENV_PREFIXES = ("AGNES_", "LC_", "PYTHON", "XDG_")
NAME_LENGTH = 32  # hex digits of the digest in the socket's name


def _relevant(name: str) -> bool:
    return name in ENV_NAMES or name.startswith(ENV_PREFIXES) or name.lower().endswith("_proxy")


def workspace_root(explicit: str | None) -> str:
    """The folder ``open_backend`` would use: ``--workspace`` as given, else the nearest
    folder holding ``.agnes/``, else the current one (resolved as ``Path.resolve``; a
    folder that is no workspace is refused in process, and no server starts for it)."""
    if explicit:
        return os.path.realpath(explicit)
    here = folder = os.path.realpath(os.getcwd())
    while True:
        if os.path.isdir(os.path.join(folder, ".agnes")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return here
        folder = parent


def code_fingerprint() -> tuple[int, int]:
    """(number, newest mtime) of the ``.py`` files of Agnes's packages: an edit or an
    upgrade changes it (a stat per file, about a millisecond)."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    count, newest = 0, 0
    stack = [os.path.join(top, name) for name in PACKAGES]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(entry.path)
            elif entry.name.endswith(".py"):
                count += 1
                newest = max(newest, entry.stat().st_mtime_ns)
    return count, newest


def installed_version() -> str:
    """The name of Agnes's ``.dist-info`` folder (it holds the version), found without
    importlib.metadata (~10 ms)."""
    for entry in sys.path:
        if not entry.endswith("-packages"):
            continue
        try:
            with os.scandir(entry) as found:
                names = [e.name for e in found]
        except OSError:
            continue
        for name in names:
            if name.startswith("agnes-") and name.endswith(".dist-info"):
                return name
    return "?"


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def server_key(root: str) -> str:
    """The hex digest naming the server for ``root`` in this process's environment."""
    parts = {
        "root": str(root),
        "python": sys.executable,
        "agnes": installed_version(),
        "code": code_fingerprint(),
        "uid": os.getuid(),
        "umask": _umask(),
        "env": sorted((k, v) for k, v in os.environ.items() if _relevant(k)),
    }
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def socket_name(digest: str) -> str:
    return f"q-{digest[:NAME_LENGTH]}"
