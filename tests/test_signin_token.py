"""Sign-in with a personal access token at /auth/login, over a real server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from agnes_mcp.auth.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from agnes_mcp.errors import SessionExpired, UserInactive
from agnes_mcp.signin.next_url import safe_next
from agnes_mcp.signin.rate_limit import RateLimiter
from tests.conftest import LiveServer, add_user, running_server, token_for

CSRF_FIELD = re.compile(r"name='csrf' value='([^']*)'")


def form_csrf(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has a CSRF field"
    return found[1]


def sign_in_with_token(client: httpx.Client, token: str, next_path: str = "") -> httpx.Response:
    page = client.get("/auth/login", params={"next": next_path} if next_path else None)
    assert page.status_code == 200, page.text
    data = {"token": token, "csrf": form_csrf(page.text), "next": next_path}
    return client.post("/auth/token", data=data)


def set_cookie_headers(response: httpx.Response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("signin") / "data") as live:
        yield live


def browser(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


def test_login_page_has_one_token_field_and_no_provider_button_without_client_id(
    server: LiveServer,
) -> None:
    with browser(server) as client:
        page = client.get("/auth/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Sign in to Agnes" in page.text
    assert page.text.count("name='token'") == 1 and "type='password'" in page.text
    assert "Sign in with Google" not in page.text and "/auth/oidc/start" not in page.text
    (cookie,) = set_cookie_headers(page, LOGIN_CSRF_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert page.headers["x-frame-options"] == "DENY"
    with browser(server) as client:
        unavailable = client.get("/auth/oidc/start")
    assert unavailable.status_code == 503 and "not set up" in unavailable.text


def test_a_token_signs_in_and_lands_by_role(server: LiveServer) -> None:
    analyst = add_user(server.services)
    with browser(server) as client:
        landed = sign_in_with_token(client, token_for(server.services, analyst))
        assert landed.status_code == 303 and landed.headers["location"] == "/me"
        (cookie,) = set_cookie_headers(landed, SESSION_COOKIE)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http here; https: test_secure_cookie_...
        again = client.get("/auth/login")
        assert analyst.email in again.text and "Sign out" in again.text
        assert "name='token'" not in again.text
    server.services.write_behind.flush()
    rows = server.services.audit_log.recent(user_id=analyst.id)
    assert [(r.action, r.params) for r in rows] == [("auth.sign_in", {"method": "token"})]
    with browser(server) as client:
        landed = sign_in_with_token(client, server.admin_token)
        assert landed.headers["location"] == "/admin"
    with browser(server) as client:
        landed = sign_in_with_token(client, server.admin_token, "/admin/tables?source=x")
        assert landed.headers["location"] == "/admin/tables?source=x"


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("garbage", 401, "not a valid token"),
        ("unknown", 401, "not a valid token"),
        ("revoked", 401, "was revoked"),
        ("expired", 401, "has expired"),
        ("deactivated", 403, "account is deactivated"),
    ],
)
def test_a_bad_token_is_shown_beside_the_field(
    server: LiveServer, case: str, status: int, message: str
) -> None:
    services = server.services
    user = add_user(services)
    if case == "garbage":
        raw = "not-a-token <script>"
    elif case == "unknown":
        raw = "agnes_abcdefghij_" + "A" * 43
    elif case == "expired":
        _, raw = services.tokens.create(user.id, "short", expires_in=timedelta(microseconds=1))
    else:
        raw = token_for(services, user)
        info = services.token_store.by_prefix(raw.split("_")[1])
        assert info is not None
        if case == "revoked":
            services.tokens.revoke(info.info.id)
        else:
            services.users.set_active(user.id, False)
    with browser(server) as client:
        refused = sign_in_with_token(client, raw)
    assert refused.status_code == status
    assert message in refused.text and "id='token-error'" in refused.text
    assert raw not in refused.text and "<script>" not in refused.text  # never echoed
    assert not set_cookie_headers(refused, SESSION_COOKIE)


def test_the_form_needs_its_csrf_token(server: LiveServer) -> None:
    token = token_for(server.services, add_user(server.services))
    with browser(server) as client, browser(server) as other:
        page = client.get("/auth/login")
        csrf = form_csrf(page.text)
        foreign = form_csrf(other.get("/auth/login").text)  # valid, but for another browser
        for sent in ({}, {"csrf": "0" * 64}, {"csrf": foreign}):
            refused = client.post("/auth/token", data={"token": token, **sent})
            assert refused.status_code == 403, sent
            assert "did not come from this server" in refused.text
            assert not set_cookie_headers(refused, SESSION_COOKIE)
        client.cookies.clear()  # the form's token without the cookie it is bound to
        refused = client.post("/auth/token", data={"token": token, "csrf": csrf})
        assert refused.status_code == 403


def test_a_cross_site_form_post_is_refused(server: LiveServer) -> None:
    token = token_for(server.services, add_user(server.services))
    with browser(server) as client:
        csrf = form_csrf(client.get("/auth/login").text)
        refused = client.post(
            "/auth/token",
            data={"token": token, "csrf": csrf},
            headers={"Origin": "https://evil.example.com"},
        )
    assert refused.status_code == 403
    assert not set_cookie_headers(refused, SESSION_COOKIE)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example.com",
        "https://evil.example.com",
        "/\\evil.example.com",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=1",
        "evil.example.com",
    ],
)
def test_next_never_leaves_the_server(server: LiveServer, target: str) -> None:
    token = token_for(server.services, add_user(server.services))
    with browser(server) as client:
        page = client.get("/auth/login", params={"next": target})
        assert "name='next' value=''" in page.text
        data = {"token": token, "csrf": form_csrf(page.text), "next": target}
        landed = client.post("/auth/token", data=data)
    assert landed.status_code == 303 and landed.headers["location"] == "/me"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/admin/tables", "/admin/tables"),
        ("/me?tab=tokens#x", "/me?tab=tokens#x"),
        ("//evil.example.com/x", None),
        ("/\\evil.example.com", None),
        ("https://evil.example.com", None),
        ("javascript:alert(1)", None),
        ("/a\x00b", None),
        ("", None),
        (None, None),
        ("/" + "a" * 3000, None),
    ],
)
def test_safe_next(raw: str | None, expected: str | None) -> None:
    assert safe_next(raw) == expected


def test_sign_out_revokes_the_session_server_side(server: LiveServer) -> None:
    with browser(server) as client:
        sign_in_with_token(client, token_for(server.services, add_user(server.services)))
        old = client.cookies[SESSION_COOKIE]
        page = client.get("/auth/login")
        refused = client.post("/auth/logout", data={"csrf": "wrong"})
        assert refused.status_code == 403
        assert server.services.web_sessions.verify(old, touch=False)  # still signed in
        out = client.post("/auth/logout", data={"csrf": form_csrf(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/auth/login"
        (cleared,) = set_cookie_headers(out, SESSION_COOKIE)
        assert "Max-Age=0" in cleared or "expires=Thu, 01 Jan 1970" in cleared
    with pytest.raises(SessionExpired):
        server.services.web_sessions.verify(old)
    with httpx.Client(base_url=server.base_url, cookies={SESSION_COOKIE: old}) as stale:
        assert "name='token'" in stale.get("/auth/login").text  # the old cookie is refused


def test_deactivating_the_user_ends_their_session(server: LiveServer) -> None:
    user = add_user(server.services)
    with browser(server) as client:
        sign_in_with_token(client, token_for(server.services, user))
        cookie = client.cookies[SESSION_COOKIE]
        with server.client(server.admin_token) as admin:
            done = admin.post(f"/api/admin/users/{user.email}/deactivate")
            assert done.status_code == 200, done.text
        assert "name='token'" in client.get("/auth/login").text
    with pytest.raises((SessionExpired, UserInactive)):
        server.services.web_sessions.verify(cookie)


def test_failed_attempts_are_rate_limited_and_cookies_are_secure_over_https(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "data", public_url="https://agnes.example.com") as live:
        token = token_for(live.services, add_user(live.services))
        with browser(live) as client:
            page = client.get("/auth/login")
            (nonce_cookie,) = set_cookie_headers(page, LOGIN_CSRF_COOKIE)
            assert "Secure" in nonce_cookie
            nonce = nonce_cookie.split(";")[0].split("=", 1)[1]
            csrf = form_csrf(page.text)
            client.cookies.clear()  # a Secure cookie is not sent over http: send it by hand
            headers = {"Cookie": f"{LOGIN_CSRF_COOKIE}={nonce}"}

            def attempt(raw: str) -> httpx.Response:
                return client.post(
                    "/auth/token", data={"token": raw, "csrf": csrf}, headers=headers
                )

            good = attempt(token)
            assert good.status_code == 303
            (session_cookie,) = set_cookie_headers(good, SESSION_COOKIE)
            assert "Secure" in session_cookie and "HttpOnly" in session_cookie
            for _ in range(10):
                assert attempt("agnes_wrong").status_code == 401
            limited = attempt(token)  # even the right token waits now
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            assert "Too many failed sign-in attempts" in limited.text
            assert live.client().get("/healthz").status_code == 200


def test_rate_limiter_window_slides() -> None:
    now = [100.0]
    limiter = RateLimiter(2, 60.0, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(60.0)
    assert limiter.retry_after("b") is None
    now[0] += 30
    assert limiter.retry_after("a") == pytest.approx(30.0)
    now[0] += 30
    assert limiter.retry_after("a") is None


def test_a_session_signed_in_with_a_token_acts_within_it(server: LiveServer) -> None:
    """A data-only token of an admin opens a session that is not an admin's: no admin
    app, no admin token minted from /me (the REST API refuses the same upgrade)."""
    from agnes_mcp.builtin_groups import ADMIN_GROUP_ID

    admin = add_user(server.services, (ADMIN_GROUP_ID,))
    data_only = token_for(server.services, admin)  # scopes: data
    before = {t.id for t in server.services.token_store.all(user_id=admin.id)}
    with browser(server) as client:
        landed = sign_in_with_token(client, data_only)
        assert landed.status_code == 303 and landed.headers["location"] == "/me"
        gate = client.get("/admin")
        assert gate.status_code == 403 and "admin scope" in gate.text
        me = client.get("/me")
        minted = client.post(
            "/me/tokens", data={"csrf": form_csrf(me.text), "name": "upgrade", "admin": "on"}
        )
        assert "admin scope" in minted.text
    after = server.services.token_store.all(user_id=admin.id)
    assert not [t for t in after if t.id not in before and "admin" in t.scopes]
    with browser(server) as client:  # the same person with an admin-scoped token: admin
        sign_in_with_token(client, token_for(server.services, admin, admin=True))
        assert client.get("/admin", follow_redirects=False).status_code != 403


def test_revoking_the_token_ends_the_sessions_opened_with_it(server: LiveServer) -> None:
    user = add_user(server.services)
    info, raw = server.services.tokens.create(user.id, "leaked", ["data"])
    with browser(server) as client:
        sign_in_with_token(client, raw)
        cookie = client.cookies[SESSION_COOKIE]
        assert client.get("/me").status_code == 200
        server.services.tokens.revoke(info.id)
        gone = client.get("/me", follow_redirects=False)
        assert gone.status_code in (302, 303) and "/auth/login" in gone.headers["location"]
    with pytest.raises(SessionExpired, match="revoked or has expired"):
        server.services.web_sessions.verify(cookie)
    assert not server.services.tokens.alive(info.id)
    assert not server.services.tokens.alive("tok_unknown")
    fresh, _ = server.services.tokens.create(user.id, "fine", ["data"], timedelta(days=1))
    assert server.services.tokens.alive(fresh.id)
