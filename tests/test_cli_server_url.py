"""The server URL a new user types: the MCP endpoint the demo banner prints is taken for the
server's root (and the CLI says so); a URL where something other than Agnes answers is named
as such, as a typed error, without echoing what that server sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from agnes_sync.credentials import config_home
from cli import exit_codes
from tests.cli_harness import run
from tests.conftest import DemoServer

PAGE = b"<html><body><h1>Welcome to nginx!</h1><script>secret()</script></body></html>"


@pytest.mark.parametrize("suffix", ["/mcp", "/mcp/"])
def test_init_with_the_mcp_url_uses_the_servers_root_and_says_so(
    demo_server: DemoServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    base = demo_server.live.base_url
    folder = tmp_path / "ws"
    code, out, err = run(
        capsys,
        "init",
        "--server-url",
        base + suffix,
        "--token",
        demo_server.analyst_token,
        "--workspace",
        str(folder),
        "--no-pull",
        "--json",
    )
    assert code == exit_codes.OK, err
    assert json.loads(out)["server_url"] == base
    assert f"{base}/mcp is the MCP endpoint; using the server URL {base}" in err
    entries = list((config_home() / "workspaces").glob("*.json"))
    assert [json.loads(e.read_text())["server_url"] for e in entries] == [base]


def serving(status: int, body: bytes, content_type: str) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(
    params=[
        (404, PAGE, "text/html"),
        (200, PAGE, "text/html"),
        (404, b'{"detail": "Not Found"}', "application/json"),
        (200, b'{"ok": true}', "application/json"),
        (401, b"Unauthorized", "text/plain"),
    ],
    ids=["404-html", "200-html", "404-other-json", "200-other-json", "401-text"],
)
def other_server(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from serving(*request.param)


def test_a_server_that_is_not_agnes_is_named_without_its_page(
    other_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "whoami", "--server-url", other_server, "--token", "x")
    assert code == exit_codes.CONFIG
    assert f"{other_server} is not an Agnes server" in err and "GET /api/whoami" in err
    assert "<html" not in err and "nginx" not in err and "detail" not in err
    assert "Traceback" not in err and "hint: Check --server-url" in err
    code, out, _ = run(capsys, "whoami", "--server-url", other_server, "--token", "x", "--json")
    assert code == exit_codes.CONFIG and json.loads(out)["error"]["code"] == "not_agnes"

    folder = tmp_path / "ws"
    folder.mkdir()
    code, _, err = run(
        capsys, "init", "--server-url", other_server, "--token", "x", "--workspace", str(folder)
    )
    assert code == exit_codes.CONFIG and "is not an Agnes server" in err
    assert list(folder.iterdir()) == [] == list(config_home().rglob("*"))  # nothing written


def test_a_gateway_error_says_the_server_behind_it_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for url in serving(502, b"<html>Bad Gateway</html>", "text/html"):
        code, _, err = run(capsys, "whoami", "--server-url", url, "--token", "x")
        assert code == exit_codes.UNREACHABLE
        assert "HTTP 502" in err and "could not reach the Agnes server" in err
        assert "Bad Gateway</html>" not in err


def test_a_server_that_does_not_answer_in_time_is_not_called_unreachable() -> None:
    """The request got there (a long sync, a busy server): "did not answer after N s",
    not "cannot reach ... start it with agnes serve"."""
    import socket

    from agnes_sync.server_api import ServerApi, ServerTimeout, ServerUnreachable

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts (the kernel does), never answers
    port = listener.getsockname()[1]
    api = ServerApi(f"http://127.0.0.1:{port}", "agnes_x_y", timeout=0.5)
    try:
        with pytest.raises(ServerTimeout) as late:
            api.get("/api/whoami")
        assert "had not answered after 0.5 s" in late.value.message
        assert "agnes serve" not in (late.value.hint or "")
        listener.close()
        with pytest.raises(ServerUnreachable) as down:
            api.get("/api/whoami")
        assert not isinstance(down.value, ServerTimeout)
    finally:
        api.close()
        listener.close()


@pytest.mark.parametrize(
    ("url", "said", "root"),
    [
        ("http://127.0.0.1:8000/api", "the REST API", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/api/", "the REST API", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/api/docs", "the API reference", "http://127.0.0.1:8000"),
        ("https://ex.com/agnes/admin", "the admin app", "https://ex.com/agnes"),
        ("http://127.0.0.1:8000/auth/login", "the sign-in page", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/me", "your page", "http://127.0.0.1:8000"),
    ],
)
def test_a_page_the_banner_prints_is_taken_for_the_servers_root(
    url: str, said: str, root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo prints "API http://127.0.0.1:8000/api"; given as --server-url it was sent
    GET /api/api/whoami and refused (route_not_found, exit 1)."""
    from agnes_sync.credentials import normalize_url

    assert normalize_url(url) == root
    err = capsys.readouterr().err
    assert f"note: {url.rstrip('/')} is {said}; using the server URL {root}." in err
    assert normalize_url("https://agnes.example.com/home") == "https://agnes.example.com/home"


def test_the_scheme_and_host_are_taken_in_any_case() -> None:
    """HTTP://127.0.0.1 was kept as typed: another key for the stored token and another
    notebook cache folder (its snapshots gone) for the same server."""
    from agnes_sync.credentials import normalize_url

    assert (
        normalize_url("HTTP://Agnes.Example.COM:8000/Team/") == "http://agnes.example.com:8000/Team"
    )
    assert normalize_url("Https://[::1]:8000/MCP") == "https://[::1]:8000/MCP"
    assert normalize_url("HTTP://127.0.0.1:8000/mcp", say=False) == "http://127.0.0.1:8000"


def test_an_unreadable_server_url_is_refused_without_a_traceback() -> None:
    """ "http://[::1" raised urllib's ValueError (Invalid IPv6 URL) as a traceback."""
    from agnes_sync.credentials import CredentialsError, normalize_url

    with pytest.raises(CredentialsError, match="not an http"):
        normalize_url("http://[::1")


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("http://127.0.0.1:8000/?x=1", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000#top", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/auth/login?next=/admin", "http://127.0.0.1:8000"),
        ("https://ex.com/agnes/marketplace.git", "https://ex.com/agnes"),
        ("http://127.0.0.1:8000/marketplace.zip", "http://127.0.0.1:8000"),
    ],
)
def test_a_query_fragment_or_the_marketplace_is_not_taken_into_the_path(
    url: str, root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A query or fragment swallowed the path the CLI adds (GET /?x=1/api/whoami answered
    'No route GET /.'), and the marketplace URL the demo prints (…/marketplace.git) was
    sent GET /marketplace.git/api/whoami; both are taken for the server's root."""
    from agnes_sync.credentials import normalize_url

    assert normalize_url(url) == root
    assert f"using the server URL {root}." in capsys.readouterr().err


@pytest.mark.parametrize(
    "url", ["http://user:s3cret-pw@127.0.0.1:8000", "http://user@127.0.0.1:8000/mcp"]
)
def test_a_server_url_with_a_user_or_password_is_refused_unechoed(url: str) -> None:
    """httpx sent user:password@ as Basic auth in place of the token (refused: 'The
    Authorization header must read Bearer <token>'), and the note about the token echoed
    the password; it is refused, naming the URL without them."""
    from agnes_sync.credentials import CredentialsError, normalize_url

    with pytest.raises(CredentialsError, match="user name or password") as refused:
        normalize_url(url)
    assert "s3cret" not in str(refused.value) and "user" not in str(refused.value).split()[3]
    assert "http://127.0.0.1:8000" in str(refused.value)


def test_unreachable_at_the_built_in_default_says_it_is_that_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A newcomer with nothing set ran `agnes whoami` and read 'Cannot reach ...
    127.0.0.1:8000 ... agnes whoami shows the URL in use': nothing said that no URL was
    given or saved. At the built-in default the refusal says so and where it looked (both
    of the client's transports build it here); at another URL the hint stays as it was."""
    from agnes_sync.credentials import DEFAULT_SERVER_URL
    from agnes_sync.server_api import ServerUnreachable, unreachable

    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "cfg"))
    said = unreachable("Cannot reach it.", DEFAULT_SERVER_URL).hint or ""
    assert "built-in default" in said and str(tmp_path / "cfg") in said
    assert "--server-url" in said and "agnes login" in said
    other = unreachable("Cannot reach it.", "http://127.0.0.1:9")
    assert other.hint == ServerUnreachable.default_hint


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("127.0.0.1:19200", "http://127.0.0.1:19200"),
        ("localhost:8000", "http://localhost:8000"),
        ("agnes.example.com", "http://agnes.example.com"),
        ("ftp://agnes.example.com", None),
        ("not a url", None),
    ],
)
def test_an_address_without_its_scheme_is_refused_with_the_url_meant(
    given: str, meant: str | None
) -> None:
    """`agnes init --server-url 127.0.0.1:19200` (the address without http://) was refused
    as "not an http(s) URL" alone; the refusal offers the URL that was meant."""
    from agnes_sync.credentials import CredentialsError, normalize_url

    with pytest.raises(CredentialsError) as refused:
        normalize_url(given)
    said = refused.value.args[0]
    assert "not an http(s) URL" in said
    if meant:
        assert f"Did you mean {meant}" in said
    else:
        assert "Did you mean" not in said
