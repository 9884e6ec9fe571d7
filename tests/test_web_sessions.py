"""Web sessions without a server: idle expiry on an injected clock, signatures, cookies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agnes_mcp.auth.sessions import WebSessionService
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import CsrfFailed, SessionExpired, SessionInvalid, UserInactive
from agnes_mcp.services import Services
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.web_sessions import WebSessionRepository
from tests.conftest import add_user, make_settings


def clocked(services: Services, now: list[datetime]) -> WebSessionService:
    return WebSessionService(
        services.settings,
        services.store,
        WebSessionRepository(services.store),
        services.users,
        services.groups,
        clock=lambda: now[0],
    )


def test_a_session_ends_after_12_idle_hours_and_use_keeps_it_alive(services: Services) -> None:
    now = [datetime(2026, 11, 28, 9, 0, tzinfo=UTC)]
    sessions = clocked(services, now)
    session, cookie = sessions.sign_in(add_user(services).id, "token", "127.0.0.1")
    now[0] += timedelta(hours=11, minutes=59)
    assert sessions.verify(cookie).id == session.id  # used: the idle clock restarts
    now[0] += timedelta(hours=11, minutes=59)
    assert sessions.check(session.id).id == session.id
    now[0] += timedelta(hours=12, seconds=1)
    with pytest.raises(SessionExpired, match="idle"):
        sessions.verify(cookie)
    with pytest.raises(SessionExpired):
        sessions.check(session.id)


def test_a_tampered_or_foreign_cookie_is_invalid(services: Services, tmp_path: Path) -> None:
    _, cookie = services.web_sessions.sign_in(add_user(services).id, "token")
    for bad in (cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"), "x", ""):
        with pytest.raises(SessionInvalid):
            services.web_sessions.verify(bad)
    other = Services.open(make_settings(tmp_path / "other"))
    try:  # another instance's key does not verify this one's cookies
        with pytest.raises(SessionInvalid):
            other.web_sessions.verify(cookie)
    finally:
        other.close()


def test_sign_out_and_deactivation_end_sessions(services: Services) -> None:
    user = add_user(services)
    first, cookie = services.web_sessions.sign_in(user.id, "token")
    second, cookie2 = services.web_sessions.sign_in(user.id, "oidc")
    services.web_sessions.sign_out(first.id)
    with pytest.raises(SessionExpired):
        services.web_sessions.verify(cookie)
    assert services.web_sessions.verify(cookie2).id == second.id
    services.users.set_active(user.id, False)
    with pytest.raises(UserInactive):
        services.web_sessions.verify(cookie2)
    with pytest.raises(UserInactive):
        services.web_sessions.sign_in(user.id, "token")


def test_csrf_tokens_are_bound_to_their_session_or_nonce(services: Services) -> None:
    one, _ = services.web_sessions.sign_in(add_user(services).id, "token")
    two, _ = services.web_sessions.sign_in(add_user(services).id, "token")
    services.web_sessions.check_csrf(one, one.csrf)
    for wrong in (two.csrf, "", None):
        with pytest.raises(CsrfFailed):
            services.web_sessions.check_csrf(one, wrong)
    token = services.web_sessions.login_csrf("n" * 43)
    services.web_sessions.check_login_csrf("n" * 43, token)
    with pytest.raises(CsrfFailed):
        services.web_sessions.check_login_csrf("m" * 43, token)
    with pytest.raises(CsrfFailed):
        services.web_sessions.check_login_csrf(None, token)


@pytest.mark.parametrize(
    ("public_url", "secure"), [(None, False), ("https://agnes.example.com", True)]
)
def test_cookie_options(tmp_path: Path, public_url: str | None, secure: bool) -> None:
    overrides = {"public_url": public_url} if public_url else {}
    opened = Services.open(make_settings(tmp_path / "data", **overrides))
    try:
        assert opened.web_sessions.cookie_options() == {
            "httponly": True,
            "samesite": "lax",
            "secure": secure,
            "path": "/",
        }
    finally:
        opened.close()


def test_an_admin_pages_own_checks_do_not_keep_its_session_alive(services: Services) -> None:
    """An open admin page re-checks its session every 2 s, and each check counted as
    use: an open tab on an unattended desk kept its session alive for ever. Only what
    the admin does (``touch``) restarts the idle clock; the time left says when the
    session ends by itself (its idle limit, or its token's expiry when sooner)."""
    now = [datetime(2026, 11, 28, 9, 0, tzinfo=UTC)]
    sessions = WebSessionService(
        services.settings,
        services.store,
        WebSessionRepository(services.store),
        services.users,
        services.groups,
        clock=lambda: now[0],
        token_alive=services.tokens.alive,
        token_expires=services.tokens.expires_at,
    )
    user = add_user(services)
    session, _ = sessions.sign_in(user.id, "token")
    for _ in range(13):
        now[0] += timedelta(hours=1)
        if now[0] - session.created_at <= sessions.idle:
            assert sessions.check(session.id, touch=False).id == session.id
            left = sessions.seconds_left(session.id)
            assert left == (session.created_at + sessions.idle - now[0]).total_seconds()
    with pytest.raises(SessionExpired, match="idle"):
        sessions.check(session.id, touch=False)
    info, _ = services.tokens.create(user.id, "short", None, timedelta(minutes=30))
    now[0] = utcnow()  # the token's expiry is on the real clock
    with_token, _ = sessions.sign_in(user.id, "token", token_id=info.id)
    assert info.expires_at is not None
    assert sessions.seconds_left(with_token.id) == (info.expires_at - now[0]).total_seconds()


def test_using_a_session_signed_in_with_a_token_records_the_tokens_last_use(
    services: Services,
) -> None:
    """A person who signs in to the web pages with a token and works there every day:
    the token's last use stayed at the sign-in, so the tokens page showed it idle. Each
    use of the session counts as a use of its token, through the same write-behind (in
    memory on the request; one batched UPDATE per flush) and with the caller's IP."""
    now = [datetime(2026, 11, 28, 9, 0, tzinfo=UTC)]
    sessions = WebSessionService(
        services.settings,
        services.store,
        WebSessionRepository(services.store),
        services.users,
        services.groups,
        services.write_behind,
        clock=lambda: now[0],
    )
    user = add_user(services)
    info, _ = services.tokens.create(user.id, "web", None, None)
    session, cookie = sessions.sign_in(user.id, "token", token_id=info.id)
    _, plain_cookie = sessions.sign_in(user.id, "oidc")
    now[0] += timedelta(hours=3)
    token = client_ip_var.set("192.0.2.7")
    try:
        sessions.verify(cookie)
    finally:
        client_ip_var.reset(token)
    services.write_behind.flush()
    seen = services.token_store.get(info.id).info
    assert (seen.last_used_at, seen.last_used_ip) == (now[0], "192.0.2.7")
    now[0] += timedelta(hours=1)
    sessions.check(session.id, touch=False)  # a page's own check is not a use
    sessions.verify(plain_cookie)  # a session without a token touches no token
    services.write_behind.flush()
    assert services.token_store.get(info.id).info.last_used_at == now[0] - timedelta(hours=1)
    sessions.check(session.id)  # an admin page's action: no request IP to hand
    services.write_behind.flush()
    seen = services.token_store.get(info.id).info
    assert (seen.last_used_at, seen.last_used_ip) == (now[0], "192.0.2.7")
