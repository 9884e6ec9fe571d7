"""Markdown in the admin app is text, never HTML, and links only to this server.

Panel's Markdown pane (and ``Alert``, built on it) renders raw HTML inside the markdown
it is given, and the admin app puts user-supplied strings in such panes: a token's or an
OAuth client's name in a confirmation, a group name echoed by an error, a table's
description. A token named ``<img src=x onerror=...>`` ran script in an admin's browser
and minted an admin token. Every Markdown pane the admin app makes renders HTML as text
(markdown-it's ``html`` off), and bare words like ``CLAUDE.md`` are not made into links
(``linkify`` off).

Markdown's own link syntax is the same kind of hole: a plugin name in a marketplace
repository's ``marketplace.json`` (anyone who can push there writes it) reached a sync
error shown on the Marketplaces page as ``[Session expired - sign in again](https://…)``,
a link off the server in the admin's page. A link or image is made only when its target
is a path on this server (``/admin/access``, ``#part``); any other is shown as its text.
Imported by the modules that build panes, before any is made.
"""

from __future__ import annotations

import re
from typing import Any

import panel as pn

TEXT_ONLY = {"html": False, "linkify": False}
# What makes emphasis, code, links or strike-through (an underscore inside a word, as in
# table ids, does not; HTML is text already).
_MARKUP = re.compile(r"([\\`*\[\]~])")


def plain(text: str) -> str:
    """``text`` as it reads, in a Markdown pane: the characters Markdown acts on escaped,
    so a message quoting what was typed (the cron ``*/10 * * * *``, a name with ``[``) is
    not turned into emphasis or a link."""
    return _MARKUP.sub(r"\\\1", text)


def same_site(url: str) -> bool:
    """Whether a Markdown link may point at ``url``: a path on this server or an anchor,
    never another host (``//host``, ``/\\host``) or a scheme (``https:``, ``javascript:``)."""
    url = url.strip()
    if url.startswith("#"):
        return True
    return url.startswith("/") and not url.startswith(("//", "/\\")) and "\\" not in url


def same_site_links(md: Any) -> None:
    """A markdown-it plugin: links and images only to :func:`same_site` targets."""
    md.validateLink = same_site


pn.pane.Markdown.param.renderer_options.default = TEXT_ONLY
pn.pane.Markdown.param.plugins.default = [same_site_links]
