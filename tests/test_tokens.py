"""Token lifecycle: create, use, expire, revoke; the raw token is never stored or logged."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agnes_mcp import access_admin
from agnes_mcp.auth.tokens import TOKEN_PATTERN, TokenService, hash_token
from agnes_mcp.errors import (
    AuthenticationError,
    InvalidRequest,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    UserInactive,
)
from agnes_mcp.services import Services
from cli.main import build_parser
from tests.conftest import add_user


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(services: Services) -> Clock:
    clock = Clock()
    services.tokens = TokenService(
        services.store,
        services.token_store,
        services.users,
        services.groups,
        services.write_behind,
        clock,
    )
    return clock


def test_create_and_authenticate(services: Services) -> None:
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "laptop")
    assert TOKEN_PATTERN.match(raw)
    assert info.prefix in raw and info.scopes == ["data"] and info.user_email == user.email
    principal = services.tokens.authenticate(raw, "10.0.0.1")
    assert principal.user_id == user.id and principal.token_id == info.id
    assert principal.scopes == {"data"} and not principal.is_admin


def test_raw_token_is_never_stored_or_logged(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = add_user(services)
    _, raw = services.tokens.create(user.id, "secret-check")
    services.tokens.authenticate(raw, "127.0.0.1")
    services.write_behind.flush()
    with services.store.cursor() as cur:
        cur.execute("CHECKPOINT")
        stored = cur.execute("SELECT token_hash, prefix FROM personal_access_tokens").fetchall()
    assert stored == [(hash_token(raw), raw.split("_")[1])]
    match = TOKEN_PATTERN.match(raw)
    assert match is not None
    secret = match[2]  # the 43 random characters (which may themselves hold '_')
    blob = b"".join(p.read_bytes() for p in services.settings.state_dir.glob("system.duckdb*"))
    assert secret.encode() not in blob and raw.encode() not in blob
    assert raw not in caplog.text and secret not in caplog.text


def test_expiry(services: Services, clock: Clock) -> None:
    user = add_user(services)
    _, raw = services.tokens.create(user.id, "short", expires_in=timedelta(hours=1))
    services.tokens.authenticate(raw)
    clock.now += timedelta(minutes=59)
    services.tokens.authenticate(raw)
    clock.now += timedelta(minutes=1)
    with pytest.raises(TokenExpired, match="short"):
        services.tokens.authenticate(raw)


def test_revocation_takes_effect_immediately(services: Services) -> None:
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "to-revoke")
    services.tokens.authenticate(raw)  # now cached
    revoked = services.tokens.revoke(info.id)
    assert revoked.revoked_at is not None
    with pytest.raises(TokenRevoked):
        services.tokens.authenticate(raw)
    assert services.tokens.revoke(info.id).revoked_at == revoked.revoked_at  # idempotent


def test_deactivated_user_cannot_authenticate(services: Services) -> None:
    user = add_user(services)
    _, raw = services.tokens.create(user.id, "t")
    services.tokens.authenticate(raw)
    services.users.set_active(user.id, False)
    with pytest.raises(UserInactive):
        services.tokens.authenticate(raw)


def test_group_change_is_seen_on_next_request(services: Services) -> None:
    user = add_user(services)
    _, raw = services.tokens.create(user.id, "t")
    assert not services.tokens.authenticate(raw).in_admin_group
    services.groups.add_member("admin", user.id)
    assert services.tokens.authenticate(raw).in_admin_group


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "Bearer x",
        "agnes_short_x",
        "agnes_abcdefghij_" + "x" * 42,
        "agnes_ABCDEFGHIJ_" + "x" * 43,
    ],
)
def test_malformed_tokens_are_refused_without_a_lookup(services: Services, raw: str | None) -> None:
    with pytest.raises(AuthenticationError):
        services.tokens.authenticate(raw)


def test_well_formed_but_unknown_or_tampered_token(services: Services) -> None:
    user = add_user(services)
    _, raw = services.tokens.create(user.id, "t")
    tampered = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    with pytest.raises(TokenInvalid):
        services.tokens.authenticate(tampered)
    with pytest.raises(TokenInvalid):
        services.tokens.authenticate("agnes_zzzzzzzzzz_" + "a" * 43)


def test_create_validates_scopes_name_and_lifetime(services: Services) -> None:
    user = add_user(services)
    with pytest.raises(InvalidRequest, match="scope"):
        services.tokens.create(user.id, "t", ["root"])
    with pytest.raises(InvalidRequest):
        services.tokens.create(user.id, "   ")
    with pytest.raises(InvalidRequest):
        services.tokens.create(user.id, "t", expires_in=timedelta(seconds=-1))
    assert services.token_store.all(user_id=user.id) == []


def test_last_use_is_recorded_off_the_request_path(services: Services) -> None:
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "t")
    for _ in range(500):
        services.tokens.authenticate(raw, "192.0.2.7")
    # nothing written yet: authentication only touched memory
    assert services.token_store.get(info.id).info.last_used_at is None
    assert services.write_behind.pending() == (1, 0)
    uses, _ = services.write_behind.flush()
    assert uses == 1  # 500 uses, one UPDATE
    stored = services.token_store.get(info.id).info
    assert stored.last_used_at is not None and stored.last_used_ip == "192.0.2.7"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_is_refused_with_an_authentication_error(
    services_for_hypothesis: Services, text: str
) -> None:
    with pytest.raises(AuthenticationError):
        services_for_hypothesis.tokens.authenticate(text)


@pytest.fixture(scope="module")
def services_for_hypothesis(tmp_path_factory: pytest.TempPathFactory):
    from agnes_mcp.settings import load_settings

    opened = Services.open(load_settings(data_dir=tmp_path_factory.mktemp("hyp")))
    yield opened
    opened.close()


def test_guessing_prefixes_does_not_evict_known_tokens(services: Services) -> None:
    from agnes_mcp.auth.tokens import CACHE_SIZE

    user = add_user(services)
    _, raw = services.tokens.create(user.id, "kept")
    services.tokens.authenticate(raw)
    cache = services.tokens._cache
    assert len(cache) == 1
    for i in range(300):
        with pytest.raises(TokenInvalid):
            services.tokens.authenticate(f"agnes_{i:010d}_" + "x" * 43)
    assert len(cache) == 1 and CACHE_SIZE >= 1000


def test_the_last_admin_token_cannot_be_revoked_without_another_way_in(
    services: Services,
) -> None:
    """Revoking the last usable admin-scoped token of an active admin (with no OIDC
    sign-in) locked admins out of the API and the admin app until someone minted a
    token on the server's shell: refused, as deactivating the last admin is."""
    from agnes_mcp.access_admin import revoke_token
    from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
    from agnes_mcp.errors import LastAdmin
    from tests.conftest import token_for

    admin = add_user(services, groups=(ADMIN_GROUP_ID,))
    first = services.tokens.authenticate(token_for(services, admin, admin=True))
    data_only = services.tokens.authenticate(token_for(services, admin))
    assert first.token_id and data_only.token_id
    with pytest.raises(LastAdmin, match="lock admins out") as refused:
        revoke_token(services, first, first.token_id)
    # the command the hint names runs (it said `agnes admin token create --admin`, a flag
    # the command has not got)
    said = re.search(r"\((agnes admin token create[^,]*),", refused.value.hint or "")
    assert said is not None
    args = build_parser(["admin"]).parse_args(said.group(1).split()[1:])
    assert args.scope == ["admin", "data"]
    assert services.tokens.alive(first.token_id)
    revoke_token(services, first, data_only.token_id)  # a data-only token: nothing guarded

    second = services.tokens.authenticate(token_for(services, admin, admin=True))
    assert revoke_token(services, second, first.token_id).revoked_at is not None
    with pytest.raises(LastAdmin):  # now the second is the last one
        revoke_token(services, second, second.token_id)

    oidc = services.settings.auth.oidc.model_copy(update={"client_id": "agnes.example.com"})
    services.settings.auth = services.settings.auth.model_copy(update={"oidc": oidc})
    assert revoke_token(services, second, second.token_id).revoked_at is not None


def test_two_revokes_at_once_leave_an_admin_token(services: Services) -> None:
    """The check and the revoke were two steps: two revokes at once each saw the other
    token and both went through, locking the only admin out."""
    import threading

    from agnes_mcp.access_admin import revoke_token
    from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
    from agnes_mcp.errors import LastAdmin
    from tests.conftest import token_for

    admin = add_user(services, groups=(ADMIN_GROUP_ID,))
    one = services.tokens.authenticate(token_for(services, admin, admin=True))
    two = services.tokens.authenticate(token_for(services, admin, admin=True))
    start = threading.Barrier(2)
    refused: list[LastAdmin] = []

    def revoke(token_id: str) -> None:
        start.wait()  # both checks as close together as the threads allow
        try:
            revoke_token(services, one, token_id)
        except LastAdmin as exc:
            refused.append(exc)

    threads = [threading.Thread(target=revoke, args=(str(t.token_id),)) for t in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    alive = [t for t in (one, two) if services.tokens.alive(str(t.token_id))]
    assert len(refused) == 1 and len(alive) == 1


def test_demoting_or_deactivating_the_holder_of_the_last_admin_tokens_is_refused(
    services: Services,
) -> None:
    """Revoking the last usable admin-scoped token was refused (admins locked out), but
    removing its holder from Admin (which revokes it) or deactivating them was not: the
    same lockout, reached another way. Refused alike; allowed once another admin holds one."""
    from agnes_mcp.access_admin import deactivate_user, remove_member
    from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
    from agnes_mcp.errors import LastAdmin
    from tests.conftest import token_for

    holder = add_user(services, groups=(ADMIN_GROUP_ID,))
    tokenless = add_user(services, groups=(ADMIN_GROUP_ID,))  # an admin with no way in
    actor = services.tokens.authenticate(token_for(services, holder, admin=True))
    with pytest.raises(LastAdmin, match="locked out"):
        remove_member(services, actor, "Admin", holder.email)
    with pytest.raises(LastAdmin, match="locked out"):
        deactivate_user(services, actor, holder.email)
    assert services.tokens.alive(actor.token_id or "")
    assert services.users.get(holder.id).active

    token_for(services, tokenless, admin=True)  # now another admin can get in
    remove_member(services, actor, "Admin", holder.email)
    assert not services.tokens.alive(actor.token_id or "")


def test_a_token_may_not_mint_one_that_outlives_it(services: Services) -> None:
    """A token that expires (a one-day token, or a web session signed in with one) made
    tokens that never did: a leaked short-lived token became a way in for good. A
    non-admin's new token ends no later than the token it is made with."""
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "a week", None, timedelta(days=7, hours=1))
    actor = services.tokens.authenticate(raw, record_use=False)
    for days in (None, 8, 30):
        with pytest.raises(InvalidRequest, match="may not outlive") as refused:
            access_admin.create_token(services, actor, "longer", expires_in_days=days)
        assert "at most 7" in (refused.value.hint or "")
        assert refused.value.details["fields"][0]["field"] == "expires_in_days"
    made, _ = access_admin.create_token(services, actor, "shorter", expires_in_days=7)
    assert made.expires_at is not None and info.expires_at is not None
    assert made.expires_at <= info.expires_at
    session, _ = services.web_sessions.sign_in(
        user.id, "token", token_id=info.id, scopes=actor.scopes
    )
    with pytest.raises(InvalidRequest, match="may not outlive"):
        access_admin.create_token(services, session.principal, "from the web", expires_in_days=None)
    _, raw_forever = services.tokens.create(user.id, "no end", None, None)
    free = services.tokens.authenticate(raw_forever, record_use=False)
    assert access_admin.create_token(services, free, "any")[0].expires_at is None
