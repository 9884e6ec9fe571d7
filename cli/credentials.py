"""Where the CLI finds the server URL and token: flags, then env, then the credentials file.

The file is ``$AGNES_CONFIG_HOME/credentials`` (default ``~/.config/agnes/credentials``,
honouring ``XDG_CONFIG_HOME``), JSON ``{"server_url": ..., "token": ...}``, mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"


class CredentialsError(Exception):
    """No usable credentials; the message says where they were looked for."""


@dataclass(frozen=True)
class Credentials:
    server_url: str
    token: str | None


def config_home() -> Path:
    explicit = os.environ.get("AGNES_CONFIG_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "agnes"


def credentials_path() -> Path:
    return config_home() / "credentials"


def read_file() -> dict[str, str]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise CredentialsError(f"The credentials file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"The credentials file {path} must hold a JSON object.")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def write_file(server_url: str, token: str) -> Path:
    """Store credentials readable by the owner only."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(".credentials.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"server_url": server_url, "token": token}, indent=2).encode())
    finally:
        os.close(fd)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def resolve(server_url: str | None, token: str | None) -> Credentials:
    stored = read_file() if not (server_url and token) else {}
    url = server_url or os.environ.get("AGNES_SERVER_URL") or stored.get("server_url")
    tok = token or os.environ.get("AGNES_TOKEN") or stored.get("token")
    chosen = (url or DEFAULT_SERVER_URL).strip().rstrip("/")
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialsError(
            f"The server URL '{chosen}' is not an http(s) URL, e.g. http://127.0.0.1:8000."
        )
    return Credentials(server_url=chosen, token=tok)
