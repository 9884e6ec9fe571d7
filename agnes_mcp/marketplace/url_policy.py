"""Which repository URLs the server fetches.

By default only ``https://`` to public hosts: a marketplace URL is admin input that the
server will connect to, so loopback and private addresses (the server's own network) and
local paths are refused unless ``marketplace.allow_local`` says one box runs everything.
Link-local (cloud metadata services), multicast, reserved and unspecified addresses are
refused always. A URL carrying credentials (user info, or a query or fragment that might
hold a token) is refused without echoing them: the token belongs in an environment
variable (``--token-env``).

A host name is judged by the addresses it resolves to, and git must then connect to
those very addresses: resolved again by git, a name could answer a public address to the
check and a private one to the fetch (DNS rebinding), or a private one to the check (so
plain ``http://`` passes under ``allow_local``) and a public one to the fetch (the token
sent unencrypted across the internet). :func:`check_fetch_url` returns the checked
addresses as a curl resolve entry (``http.curloptResolve``) pinning git to them.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from agnes_mcp.errors import MarketplaceFetchFailed, MarketplaceUrlRefused
from agnes_sync.url_host import ascii_hint, is_plain_host

HostKind = Literal["public", "local", "forbidden"]
LOOPBACK = ("127.0.0.1", "::1")  # what a 'localhost' name is taken to mean, and pinned to

_LOCAL_HINT = (
    "Local paths, file:// URLs and loopback or private hosts need the setting "
    "marketplace.allow_local (AGNES_MARKETPLACE__ALLOW_LOCAL=true) on a server that runs "
    "everything on one box."
)


@dataclass(frozen=True)
class FetchUrl:
    """A URL checked for a fetch, and where git may connect for it."""

    url: str
    # 'host:port:address[,address]' for http.curloptResolve: the addresses the check saw;
    # None for a local path or an IP literal (nothing to resolve).
    pinned: str | None


def check_fetch_url(url: str, *, allow_local: bool) -> FetchUrl:
    """The URL checked just before a fetch, with the addresses git must use. A host name
    that does not resolve now is refused (it could resolve to anything for git later)."""
    text, host, port, addresses = _checked(
        url, allow_local=allow_local, resolve=True, must_resolve=True
    )
    if host is None:
        return FetchUrl(text, None)
    listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    return FetchUrl(text, f"{host}:{port}:{listed}")


def check_source_url(url: str, *, allow_local: bool, resolve: bool = True) -> str:
    """The URL as git should be given it (a local path made absolute), or an error.

    ``resolve`` looks the host name up and refuses it when it points at a local
    address (off in tests of the rules themselves)."""
    return _checked(url, allow_local=allow_local, resolve=resolve)[0]


def _checked(
    url: str, *, allow_local: bool, resolve: bool, must_resolve: bool = False
) -> tuple[str, str | None, int, tuple[str, ...]]:
    """The URL as git should be given it, its host name (None for a local path or an IP
    literal), port, and the addresses the name was judged by (none when not resolved; a
    name that does not resolve is refused when ``must_resolve``)."""
    text = url.strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text) or text.startswith("-"):
        raise MarketplaceUrlRefused(
            "The repository URL is empty or holds spaces or control characters.",
            hint="Give an https:// URL, e.g. https://git.example.com/team/plugins.git.",
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and (parts.username or parts.password or "@" in parts.netloc):
        raise MarketplaceUrlRefused(
            "The repository URL carries credentials; they would end up on disk and in logs.",
            hint="Remove them from the URL and put the read token in an environment variable "
            "named with --token-env.",
        )
    if scheme == "https" or scheme == "http":
        if parts.query or parts.fragment or "?" in text or "#" in text:
            raise MarketplaceUrlRefused(
                "The repository URL has a query or fragment (not shown: it may hold a secret).",
                hint="Give the plain clone URL, e.g. https://git.example.com/team/plugins.git.",
            )
        host = parts.hostname or ""
        if not host:
            raise MarketplaceUrlRefused(f"The repository URL {text} names no host.")
        # git (curl) decodes '%xx' and turns non-ASCII names into their xn-- form: it would
        # look up a name no check saw (the one rule every URL option follows)
        if not is_plain_host(host) or "%" in parts.netloc:
            raise MarketplaceUrlRefused(
                f"The host of {text} is not a plain host name (ASCII letters, digits, '-', "
                "'_' and '.'): git would look up another name than the one checked here.",
                hint=ascii_hint(host),
            )
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:  # git would fail at every sync: "URL using bad/illegal format"
            raise MarketplaceUrlRefused(
                f"The repository URL {text} has a port that is not a number from 1 to 65535.",
                hint="Give the git server's port, or none for the default one.",
            )
        kind, addresses = _host_kind(host, resolve=resolve)
        if must_resolve and not addresses and _ip_literal(host.strip("[]")) is None:
            raise MarketplaceFetchFailed(
                f"Could not resolve host {host} of {text}.",
                hint="Check the host name and the server's DNS; the last good sync stays served.",
            )
        if kind == "forbidden":
            raise MarketplaceUrlRefused(
                f"{text} points at a link-local, multicast, reserved or unspecified address.",
                hint="Give the address of the git server itself, e.g. "
                "https://git.example.com/team/plugins.git.",
            )
        local = kind == "local"
        if scheme == "http" and not (allow_local and local):
            raise MarketplaceUrlRefused(
                f"{text} is plain http://: the token and the plugins would travel unencrypted.",
                hint="Use https://. " + _LOCAL_HINT,
            )
        if local and not allow_local:
            raise MarketplaceUrlRefused(
                f"{text} points at a loopback or private address.", hint=_LOCAL_HINT
            )
        named = None if _ip_literal(host.strip("[]")) is not None else host
        return text, named, port or (443 if scheme == "https" else 80), addresses
    if scheme == "file" or (not scheme and _looks_like_path(text)):
        if not allow_local:
            raise MarketplaceUrlRefused(f"{text} is a local repository.", hint=_LOCAL_HINT)
        path = Path(parts.path if scheme == "file" else text).expanduser()
        if not path.is_absolute():
            path = path.resolve()
        return str(path), None, 0, ()
    raise MarketplaceUrlRefused(
        f"{text} is not an https:// URL (ssh, git:// and other transports are not supported).",
        hint="Give the repository's https:// clone URL and a read token with --token-env.",
    )


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or (":" not in text and "/" in text)


def _host_kind(host: str, *, resolve: bool) -> tuple[HostKind, tuple[str, ...]]:
    """'local' for loopback and private addresses, 'forbidden' for link-local, multicast,
    reserved and unspecified ones (the worst of every address the name resolves to), and
    the addresses judged (a 'localhost' name: loopback, never looked up)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "local", LOOPBACK
    literal = _ip_literal(name)
    if literal is not None:
        return _address_kind(literal), ()
    if not resolve:
        return "public", ()
    try:
        infos = socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return "public", ()  # unknown now: git's own fetch will say so
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    kinds = {_address_kind(ipaddress.ip_address(a)) for a in addresses}
    for kind in ("forbidden", "local"):
        if kind in kinds:
            return kind, addresses
    return "public", addresses


def _ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as an IP literal means, including the legacy IPv4 forms
    curl accepts ('127.1', '2130706433', '0x7f.0.0.1')."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if not all(part and (part.isdigit() or part.startswith("0x")) for part in name.split(".")):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


def _address_kind(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> Literal["public", "local", "forbidden"]:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if (
        address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or (address.is_reserved and not address.is_loopback)
    ):
        return "forbidden"
    if address.is_loopback or address.is_private:
        return "local"
    return "public"
