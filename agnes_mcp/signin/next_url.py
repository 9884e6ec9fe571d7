"""Where to go after sign-in: only paths on this server, never another site."""

from __future__ import annotations

from urllib.parse import urlsplit

from agnes_mcp.auth.principal import Principal

MAX_NEXT = 2000


def safe_next(raw: str | None) -> str | None:
    """``raw`` when it is a same-origin path (``/admin/tables?x=1``), else ``None``.

    Refused: anything not starting with exactly one ``/`` (``//host``, ``https://...``,
    ``javascript:``), a backslash (browsers read ``/\\host`` as ``//host``), control
    characters, and over-long values.
    """
    if not raw or len(raw) > MAX_NEXT:
        return None
    if not raw.startswith("/") or raw.startswith("//"):
        return None
    if "\\" in raw or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return None
    return raw


def default_destination(principal: Principal) -> str:
    """Admins land on the admin app, everyone else on their own page."""
    return "/admin" if principal.is_admin else "/me"


def destination(raw: str | None, principal: Principal) -> str:
    return safe_next(raw) or default_destination(principal)
