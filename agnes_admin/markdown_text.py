"""Markdown in the admin app is text, never HTML.

Panel's Markdown pane (and ``Alert``, built on it) renders raw HTML inside the markdown
it is given, and the admin app puts user-supplied strings in such panes: a token's or an
OAuth client's name in a confirmation, a group name echoed by an error, a table's
description. A token named ``<img src=x onerror=...>`` ran script in an admin's browser
and minted an admin token. Every Markdown pane the admin app makes renders HTML as text
(markdown-it's ``html`` off), and bare words like ``CLAUDE.md`` are not made into links
(``linkify`` off). Imported by the modules that build panes, before any is made.
"""

from __future__ import annotations

import panel as pn

TEXT_ONLY = {"html": False, "linkify": False}

pn.pane.Markdown.param.renderer_options.default = TEXT_ONLY
