"""The admin app's pages. Each module here registers one :class:`Page`; the app serves
every registered page at ``/admin/<slug>`` (``/admin`` for the first) with the same
navigation. Adding a page is adding a module: nothing else lists them."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import agnes_admin.markdown_text  # every page's Markdown renders HTML as text
import agnes_admin.table_fit  # a table's columns past the page's width fold under each row
import agnes_admin.table_keys  # Tab moves past a read-only table
import agnes_admin.text_inputs  # noqa: F401 - the browser never cuts what is typed
from agnes_admin.context import PageContext


@dataclass(frozen=True)
class Page:
    slug: str  # '' for the overview at /admin
    title: str
    order: int
    build: Callable[[PageContext], Any]  # returns a Panel viewable

    @property
    def path(self) -> str:
        return "/admin" + (f"/{self.slug}" if self.slug else "")


def cut_text(text: str, limit: int, rest: str) -> str:
    """``text`` at most ``limit`` characters; when cut, it says so and where ``rest`` (the
    whole text) is to be read."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (cut at {limit} of {len(text)} characters; the whole text: {rest})"


def whole_numbers(frame: Any, *columns: str) -> Any:
    """``frame`` with ``columns`` as whole numbers that may be missing (pandas' ``Int64``):
    one missing value (a table never synced, a query that scanned nothing recorded) made
    the column float, and the browser showed every count with a decimal ("200,000.0")."""
    return frame.astype({column: "Int64" for column in columns})


_PAGES: dict[str, Page] = {}


def register(page: Page) -> Page:
    if page.slug in _PAGES:
        raise ValueError(f"two admin pages claim /admin/{page.slug}")
    _PAGES[page.slug] = page
    return page


def all_pages() -> list[Page]:
    """Every page, in menu order (imports each module of this package once)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return sorted(_PAGES.values(), key=lambda page: page.order)
