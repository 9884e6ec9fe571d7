"""The Python program in docs/oauth.md signs in and runs its query against a real server.

The block is taken from the doc as written; only the server URL and the loopback port are
set. ``webbrowser.open`` is the one stand-in: a browser that is not signed in, so it goes
through ``/auth/login`` (with the analyst's token) to the consent page, clicks Allow and
follows the redirect to the program's callback, from a thread, as a real browser would.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import webbrowser
from pathlib import Path

import httpx
import pytest

from tests.conftest import DemoServer
from tests.oauth_harness import Browser

DOC = Path(__file__).resolve().parents[1] / "docs" / "oauth.md"
CLIENT_NAME = "My analysis script"  # what the doc's program registers as


def doc_program() -> str:
    blocks: list[str] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/oauth.md has one Python program"
    return blocks[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_doc_program_signs_in_and_queries(
    demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = demo_server.live.base_url
    source = doc_program()
    assert 'AGNES = "https://agnes.example.com"' in source and "PORT = 53682" in source
    source = source.replace("https://agnes.example.com", base).replace(
        "PORT = 53682", f"PORT = {free_port()}"
    )
    browser = Browser.signed_out(base, demo_server.analyst_token)
    delivered: list[int] = []

    def visit(url: str) -> None:
        asyncio.run(browser.authorize(url))
        delivered.append(httpx.get(browser.callback["_location"], timeout=30).status_code)

    def open_in_browser(url: str, *args: object, **kwargs: object) -> bool:
        threading.Thread(target=visit, args=(url,), daemon=True).start()
        return True

    monkeypatch.setattr(webbrowser, "open", open_in_browser)
    program: dict[str, object] = {"__name__": "oauth_doc_program"}
    exec(compile(source, str(DOC), "exec"), program)  # the doc's own code
    asyncio.run(program["main"]())  # type: ignore[operator]

    printed = capsys.readouterr().out
    assert f"or open {base}/authorize?" in printed
    rows = dict(line.split("\t") for line in printed.splitlines() if line.count("\t") == 1)
    assert {"web", "mobile", "store", "partner"} <= set(rows), printed
    # it went through the sign-in page, the consent page, and the redirect reached it
    assert browser.seen_login and browser.seen_consent and delivered == [200]
    assert CLIENT_NAME in browser.seen_consent[0]
    services = demo_server.live.services
    analyst = services.users.find("analyst@example.com")
    grants = services.oauth.grants(user_id=analyst.id)
    assert [g.client_name for g in grants] == [CLIENT_NAME]
