"""The admin app in a real Chromium, against the demo data (few tests, one browser).

``AGNES_SCREENSHOTS=1`` also saves a PNG of every page into ``docs/admin/``:

    AGNES_SCREENSHOTS=1 uv run pytest -q tests/test_admin_browser.py -k every_page
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agnes_admin.pages import all_pages
from agnes_admin.shell import TITLE_CLASS
from tests.browser_harness import ConsoleLog, open_panel_page, sign_in_with_token
from tests.conftest import DemoServer, running_demo

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "admin"
# Read at import: an autouse fixture clears AGNES_* variables before each test.
TAKE_SCREENSHOTS = os.environ.get("AGNES_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(tmp_path_factory.mktemp("admin-browser")) as server:
        yield server


def slug_name(slug: str) -> str:
    return slug or "overview"


def test_sign_in_with_a_token_then_admin_renders(demo: DemoServer, browser_context: Any) -> None:
    page = browser_context.new_page()
    base = demo.live.base_url
    sign_in_with_token(page, base, demo.admin_token, next_path="/admin")
    assert page.url.startswith(f"{base}/admin"), page.url
    page.close()
    page = browser_context.new_page()  # a clean console: the admin page's own
    log = ConsoleLog.attach(page)
    response = open_panel_page(page, f"{base}/admin")
    assert response.status == 200
    page.locator(f"h1.{TITLE_CLASS}", has_text="Overview").wait_for()
    assert not log.errors, (log.errors, log.bad_responses)


def test_every_page_renders_without_console_errors(demo: DemoServer, browser_context: Any) -> None:
    base = demo.live.base_url
    sign_in_with_token(browser_context.new_page(), base, demo.admin_token, next_path="/admin")
    for admin_page in all_pages():
        page = browser_context.new_page()  # a page per admin page: its own console log
        log = ConsoleLog.attach(page)
        response = open_panel_page(page, f"{base}{admin_page.path}")
        assert response.status == 200, admin_page.path
        page.locator(f"h1.{TITLE_CLASS}", has_text=admin_page.title).wait_for()
        # Every other page is one click away in the menu.
        for other in all_pages():
            assert page.locator(f"nav.agnes-nav a[href='{other.path}']").count() == 1
        assert not log.errors, (admin_page.path, log.errors)
        assert not log.failed_requests, log.failed_requests
        external = [u for u in log.requests if not u.startswith((base, "data:", "blob:"))]
        assert not external, external  # no CDN: every asset comes from this server
        if TAKE_SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / f"{slug_name(admin_page.slug)}.png"))
        page.close()


def test_an_analyst_sees_me_and_gets_403_on_admin(demo: DemoServer, browser_context: Any) -> None:
    page = browser_context.new_page()
    base = demo.live.base_url
    sign_in_with_token(page, base, demo.analyst_token, next_path="/me")
    assert page.url.startswith(f"{base}/me"), page.url
    response = page.goto(f"{base}/admin")
    assert response.status == 403
    assert page.get_by_role("link", name="/me").count() == 1
