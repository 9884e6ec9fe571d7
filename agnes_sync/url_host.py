"""The one rule for the host of every URL an admin gives the server to connect to.

A host must be looked up as it is written: HTTP clients (httpx, curl under git) and URL
parsers (pydantic's) decode ``%xx`` escapes and turn non-ASCII names into their
``xn--`` form, so ``https://ex%2eample.com`` reaches ``ex.ample.com`` and a look-alike
Cyrillic letter reaches a stranger's domain, while every check, message and log line
shows the name as written. A host is therefore a plain name (ASCII letters, digits,
``-``, ``_`` and ``.``) or an IP literal, and a port is a number from 1 to 65535.
The marketplace repository URLs, the connectors' URL options and the server's own URL
settings all judge hosts with :func:`url_host_problem`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

PLAIN_HOST = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


def is_plain_host(host: str) -> bool:
    """Whether ``host`` (as :func:`urllib.parse.urlsplit` gives it) is looked up as written."""
    if PLAIN_HOST.match(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def ascii_hint(host: str) -> str:
    """How to write ``host`` so that it is looked up as checked."""
    plain = "Write the host name as DNS knows it, without '%' escapes."
    if host.isascii():
        return plain
    try:
        return f"{plain} In ASCII: {host.encode('idna').decode('ascii')}."
    except UnicodeError:
        return plain


def url_host_problem(url: str) -> str | None:
    """Why the host or port of the http(s) URL ``url`` cannot be used as written, or None.
    The message names the host (never the rest of the URL, which may hold a secret)."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    host = parts.hostname or ""
    if not host:
        return "names no host"
    if not is_plain_host(host) or "%" in netloc:
        return (
            f"the host {host!r} is not a plain host name (ASCII letters, digits, '-', '_' "
            "and '.'): it would be looked up as another name than the one written. "
            + ascii_hint(host)
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    return None


def plain_host_url(value: object) -> object:
    """A ``mode="before"`` field validator for a URL option: the text as written is refused
    when its host is not looked up as written (a parsed URL type would quietly decode it)."""
    if isinstance(value, str) and "://" in value:
        problem = url_host_problem(value)
        if problem:
            raise ValueError(problem)
    return value
