"""Browser fixtures: one Debian Chromium, driven by Playwright's sync API
(``executable_path``, never ``playwright install``), and a fresh context per test.

The browser lives for one module, and every browser test is in ``test_admin_browser.py``,
so a test session starts Chromium once. It cannot outlive that module: Playwright's sync
API keeps an event loop running on the main thread while it is open, which breaks any
later test that calls ``asyncio.run``.

Helpers: :func:`sign_in_with_token` fills the ``/auth/login`` token form;
:func:`open_panel_page` navigates and waits for the page to be live, signalled by the
console line Bokeh prints when its websocket opens (no sleeps); :class:`ConsoleLog`
collects console errors and failed requests for assertions.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("AGNES_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WS_OPEN = "Websocket connection 0 is now open"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser keeps its own files (``~/.config/chromium/Crash Reports``,
    caches): a folder of the test session's, not the user's home."""
    return tmp_path_factory.mktemp("browser-home")


@pytest.fixture(scope="module")
def chromium(browser_home: Path) -> Iterator[Any]:
    """One browser for the browser tests' module (fails, never skips, without Chromium)."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does)")
    from playwright.sync_api import sync_playwright

    env: dict[str, str | float | bool] = {
        **os.environ,
        "XDG_CONFIG_HOME": str(browser_home / "config"),
        "XDG_CACHE_HOME": str(browser_home / "cache"),
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env=env
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Any]:
    """A fresh context (cookies, storage) per test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@dataclass
class ConsoleLog:
    """What a page said on its console and which of its requests failed."""

    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Any) -> ConsoleLog:
        log = cls()
        page.on("console", log._console)
        page.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
        page.on("requestfailed", lambda req: log.failed_requests.append(req.url))
        page.on("request", lambda req: log.requests.append(req.url))
        page.on(
            "response",
            lambda r: log.bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        return log

    def _console(self, message: Any) -> None:
        self.lines.append(message.text)
        if message.type == "error":
            where = (message.location or {}).get("url", "")
            self.errors.append(f"{message.text} ({where})" if where else message.text)


def sign_in_with_token(page: Any, base_url: str, token: str, next_path: str = "/me") -> None:
    """Sign in through the ``/auth/login`` token form (its one field is named ``token``)."""
    page.goto(f"{base_url}/auth/login?next={next_path}")
    page.locator("input[name=token]").fill(token)
    with page.expect_navigation():
        page.locator("form:has(input[name=token]) [type=submit]").click()


def sign_in_with_cookie(context: Any, base_url: str, cookie: str) -> None:
    """Put a session cookie (from ``services.web_sessions.sign_in``) in the context."""
    from agnes_mcp.auth.sessions import SESSION_COOKIE

    context.add_cookies(
        [{"name": SESSION_COOKIE, "value": cookie, "url": base_url, "httpOnly": True}]
    )


def open_panel_page(page: Any, url: str) -> Any:
    """Navigate to a Panel page and return once its websocket is open (the page is live);
    returns the navigation response."""
    with page.expect_console_message(lambda m: WS_OPEN in m.text, timeout=TIMEOUT_MS):
        response = page.goto(url)
    return response
