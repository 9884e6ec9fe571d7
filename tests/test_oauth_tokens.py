"""The OAuth pieces without HTTP: grants and tokens over a real system store (with a clock
the tests move), the pending requests and codes, and the redirect URI policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import InvalidRedirectUriError, OAuthClientInformationFull
from pydantic import AnyUrl

from agnes_mcp.errors import (
    OAuthGrantNotFound,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
    TokenWrongResource,
    UserInactive,
)
from agnes_mcp.oauth.clients import (
    UNNAMED,
    RegisteredClient,
    check_registration,
    display_name,
    from_record,
    redirect_problem,
    secret_hash,
    to_record,
)
from agnes_mcp.oauth.pending import IssuedCode, PendingAuthorization, PendingStore
from agnes_mcp.oauth.token_service import (
    ACCESS_PATTERN,
    REFRESH_PATTERN,
    IssuedTokens,
    OAuthTokens,
    token_hash,
)
from agnes_mcp.services import Services
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.users import User
from tests.conftest import add_user

RESOURCE = "http://127.0.0.1:8000/mcp"
LOOPBACK = "http://127.0.0.1:53682/callback"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class SecondsClock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


@pytest.fixture
def oauth(services: Services, clock: Clock) -> OAuthTokens:
    """The services' token service, on a clock the test moves."""
    return OAuthTokens(
        services.settings.auth.oauth,
        services.store,
        services.oauth_store,
        services.users,
        services.groups,
        on_use=services.write_behind.grant_used,
        clock=clock,
    )


def start(oauth: OAuthTokens, user: User, scopes: list[str] | None = None) -> IssuedTokens:
    return oauth.start_grant(
        user_id=user.id,
        client_id="client-1",
        client_name="Test client",
        scopes=scopes if scopes is not None else ["data"],
        resource=RESOURCE + "/",
    )


# --- issuing and verifying ------------------------------------------------------------------


def test_a_grant_issues_a_token_pair_that_acts_as_the_user(
    services: Services, oauth: OAuthTokens
) -> None:
    group = services.groups.add("readers", "")
    user = add_user(services, groups=(group.id,))
    issued = start(oauth, user)
    assert ACCESS_PATTERN.match(issued.access_token)
    assert REFRESH_PATTERN.match(issued.refresh_token)
    assert issued.expires_in == 60 * 60 and issued.scopes == ["data"]
    assert issued.grant.resource == RESOURCE  # stored without the trailing slash
    principal = oauth.authenticate(issued.access_token, resource=RESOURCE)
    assert principal.user_id == user.id and principal.email == user.email
    assert principal.token_id == issued.grant.id and principal.client_name == "Test client"
    assert group.id in principal.group_ids and principal.scopes == frozenset({"data"})
    assert oauth.authenticate(issued.access_token, resource=RESOURCE + "/").user_id == user.id
    assert oauth.authenticate(issued.access_token).user_id == user.id  # no resource to check
    # only the hashes are stored
    stored = services.oauth_store.token(token_hash(issued.access_token))
    assert stored is not None and stored.kind == "access"
    assert services.oauth_store.token(issued.access_token) is None


@pytest.mark.parametrize(
    ("asked", "granted"), [(["data", "admin"], ["data"]), ([], ["data"]), (["admin"], ["data"])]
)
def test_a_grant_never_carries_more_than_data(
    services: Services, oauth: OAuthTokens, asked: list[str], granted: list[str]
) -> None:
    issued = start(oauth, add_user(services), asked)
    assert issued.grant.scopes == granted
    assert oauth.authenticate(issued.access_token).scopes == frozenset(granted)


def test_a_deactivated_user_gets_no_grant(services: Services, oauth: OAuthTokens) -> None:
    user = add_user(services)
    services.users.set_active(user.id, False)
    with pytest.raises(UserInactive):
        start(oauth, user)
    assert oauth.grants(user_id=user.id) == []


def test_the_access_token_expires_on_the_clock(
    services: Services, oauth: OAuthTokens, clock: Clock
) -> None:
    issued = start(oauth, add_user(services))
    clock.advance(oauth.access_lifetime - timedelta(seconds=1))
    assert oauth.authenticate(issued.access_token, resource=RESOURCE).token_id
    clock.advance(timedelta(seconds=1))
    with pytest.raises(TokenExpired) as caught:
        oauth.authenticate(issued.access_token, resource=RESOURCE)
    assert "refresh token" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "agnesat_short",
        "agnesat_" + "x" * 43,  # well formed, never issued
        "agnes_abcdefghij_" + "x" * 43,  # a personal access token's shape
    ],
)
def test_tokens_that_were_never_issued_are_invalid(
    services: Services, oauth: OAuthTokens, raw: str
) -> None:
    with pytest.raises(TokenInvalid):
        oauth.authenticate(raw)
    assert oauth.grant_of(raw) is None


def test_a_refresh_token_is_not_an_access_token(services: Services, oauth: OAuthTokens) -> None:
    issued = start(oauth, add_user(services))
    with pytest.raises(TokenInvalid):
        oauth.authenticate(issued.refresh_token)
    assert not OAuthTokens.recognizes(issued.refresh_token)
    assert OAuthTokens.recognizes(issued.access_token)
    assert oauth.grant_of(issued.refresh_token) == oauth.grant_of(issued.access_token)


def test_another_resource_is_refused(services: Services, oauth: OAuthTokens) -> None:
    issued = start(oauth, add_user(services))
    with pytest.raises(TokenWrongResource) as caught:
        oauth.authenticate(issued.access_token, resource="http://localhost:8000/mcp")
    assert RESOURCE in caught.value.message and "localhost:8000" in caught.value.message


# --- the cache and what drops it -----------------------------------------------------------


def test_a_revoke_elsewhere_drops_the_cached_token(services: Services, oauth: OAuthTokens) -> None:
    user = add_user(services)
    issued = start(oauth, user)
    assert oauth.authenticate(issued.access_token).user_id == user.id  # now cached
    revoked = services.oauth.revoke_grant(
        issued.grant.id, "revoked by the user"
    )  # another instance
    assert not revoked.active and revoked.revoked_why == "revoked by the user"
    with pytest.raises(TokenRevoked):
        oauth.authenticate(issued.access_token)
    assert oauth.grants(user_id=user.id, active_only=True) == []
    assert [g.id for g in oauth.grants(user_id=user.id)] == [issued.grant.id]


def test_the_cache_holds_until_the_store_generation_moves(
    services: Services, oauth: OAuthTokens
) -> None:
    user = add_user(services)
    issued = start(oauth, user)
    oauth.authenticate(issued.access_token)
    with services.store.writer() as cur:  # a write that does not bump the generation
        cur.execute("UPDATE users SET active = false WHERE id = ?", [user.id])
    assert oauth.authenticate(issued.access_token).user_id == user.id  # served from the cache
    services.store.bump()
    with pytest.raises(UserInactive):
        oauth.authenticate(issued.access_token)


def test_group_changes_reach_the_next_call(services: Services, oauth: OAuthTokens) -> None:
    group = services.groups.add("movers", "")
    user = add_user(services, groups=(group.id,))
    issued = start(oauth, user)
    assert group.id in oauth.authenticate(issued.access_token).group_ids
    services.groups.remove_member(group.id, user.id, MembershipSource.ADMIN)
    assert group.id not in oauth.authenticate(issued.access_token).group_ids
    services.users.set_active(user.id, False)
    with pytest.raises(UserInactive):
        oauth.authenticate(issued.access_token)


def test_revoking_an_unknown_grant_says_so(services: Services, oauth: OAuthTokens) -> None:
    with pytest.raises(OAuthGrantNotFound):
        oauth.revoke_grant("oag_missing", "why")
    with pytest.raises(OAuthGrantNotFound):
        oauth.grant("oag_missing")


# --- last use, through the write-behind ----------------------------------------------------


def test_uses_are_recorded_by_the_write_behind(
    services: Services, oauth: OAuthTokens, clock: Clock
) -> None:
    issued = start(oauth, add_user(services))
    oauth.authenticate(issued.access_token, record_use=False)
    services.write_behind.flush()
    assert oauth.grant(issued.grant.id).last_used_at is None
    clock.advance(timedelta(minutes=5))
    used_at = clock.now
    oauth.authenticate(issued.access_token)
    assert oauth.grant(issued.grant.id).last_used_at is None  # in memory until the flush
    services.write_behind.flush()
    assert oauth.grant(issued.grant.id).last_used_at == used_at
    # an older use flushed later does not move the time back
    services.oauth_store.record_uses([(issued.grant.id, used_at - timedelta(minutes=1))])
    assert oauth.grant(issued.grant.id).last_used_at == used_at


# --- refresh rotation ----------------------------------------------------------------------


def test_a_refresh_rotates_and_the_old_token_cannot_come_back(
    services: Services, oauth: OAuthTokens
) -> None:
    issued = start(oauth, add_user(services))
    lookup = oauth.find_refresh(issued.refresh_token)
    assert lookup is not None and lookup.grant.id == issued.grant.id
    rotated = oauth.rotate(lookup)
    assert rotated.grant.id == issued.grant.id
    assert {rotated.access_token, rotated.refresh_token}.isdisjoint(
        {issued.access_token, issued.refresh_token}
    )
    assert oauth.authenticate(rotated.access_token).token_id == issued.grant.id
    # the replay: no lookup, and the whole grant ends
    assert oauth.find_refresh(issued.refresh_token) is None
    assert oauth.grant(issued.grant.id).revoked_why == "a rotated refresh token was used again"
    with pytest.raises(TokenRevoked):
        oauth.authenticate(rotated.access_token)
    assert oauth.find_refresh(rotated.refresh_token) is None


def test_two_rotations_of_one_token_end_the_grant(services: Services, oauth: OAuthTokens) -> None:
    issued = start(oauth, add_user(services))
    lookup = oauth.find_refresh(issued.refresh_token)
    assert lookup is not None
    winner = oauth.rotate(lookup)
    with pytest.raises(TokenRevoked):
        oauth.rotate(lookup)  # the same token again, as a concurrent request would
    assert not oauth.grant(issued.grant.id).active
    with pytest.raises(TokenRevoked):
        oauth.authenticate(winner.access_token)


def test_a_deactivated_user_cannot_refresh(services: Services, oauth: OAuthTokens) -> None:
    user = add_user(services)
    issued = start(oauth, user)
    services.users.set_active(user.id, False)
    lookup = oauth.find_refresh(issued.refresh_token)
    assert lookup is not None
    with pytest.raises(UserInactive):
        oauth.rotate(lookup)


@pytest.mark.parametrize("raw", ["", "agnesrt_" + "x" * 43, "agnesat_" + "x" * 43])
def test_unknown_refresh_tokens_find_nothing(oauth: OAuthTokens, raw: str) -> None:
    assert oauth.find_refresh(raw) is None


def test_an_access_token_is_not_a_refresh_token(services: Services, oauth: OAuthTokens) -> None:
    issued = start(oauth, add_user(services))
    assert oauth.find_refresh(issued.access_token) is None
    assert oauth.grant(issued.grant.id).active


# --- pending requests and codes ------------------------------------------------------------


def pending_request(store: PendingStore, expires_at: float) -> PendingAuthorization:
    return PendingAuthorization(
        id=store.new_request_id(),
        client_id="client-1",
        client_name="Test client",
        redirect_uri=LOOPBACK,
        redirect_uri_provided_explicitly=True,
        state="s",
        scopes=["data"],
        code_challenge="challenge",
        resource=RESOURCE,
        issuer="http://127.0.0.1:8000",
        expires_at=expires_at,
    )


def issued_code(expires_at: float) -> IssuedCode:
    return IssuedCode(
        client_id="client-1",
        client_name="Test client",
        user_id="usr_1",
        redirect_uri=LOOPBACK,
        redirect_uri_provided_explicitly=True,
        scopes=["data"],
        code_challenge="challenge",
        resource=RESOURCE,
        expires_at=expires_at,
    )


def test_a_pending_request_answers_once_and_expires() -> None:
    clock = SecondsClock()
    store = PendingStore(clock=clock)
    request = pending_request(store, clock.now + 600)
    store.add_request(request)
    assert store.request(request.id) == request
    assert store.request(request.id) == request  # looking does not use it up
    assert store.take_request(request.id) == request
    assert store.take_request(request.id) is None and store.request(request.id) is None

    late = pending_request(store, clock.now + 600)
    store.add_request(late)
    clock.now += 600
    assert store.request(late.id) is None and store.take_request(late.id) is None
    assert store.request("never-issued") is None


def test_a_code_is_used_once_and_remembered_until_it_expires() -> None:
    clock = SecondsClock()
    store = PendingStore(clock=clock)
    raw = store.add_code(issued_code(clock.now + 300))
    found = store.code(raw)
    assert found is not None and not found.used and found.user_id == "usr_1"
    assert store.mark_used(raw, None)
    assert not store.mark_used(raw, None)  # a second exchange
    store.set_grant(raw, "oag_1")
    replayed = store.code(raw)
    assert replayed is not None and replayed.used and replayed.used_by_grant == "oag_1"
    clock.now += 300
    assert store.code(raw) is None
    assert not store.mark_used("never-issued", None)


def test_expired_entries_make_room() -> None:
    clock = SecondsClock()
    store = PendingStore(clock=clock)
    old = store.add_code(issued_code(clock.now + 1))
    clock.now += 2
    fresh = store.add_code(issued_code(clock.now + 300))  # adding sweeps the expired one
    assert store.code(fresh) is not None
    assert not store.mark_used(old, None)  # gone, not merely expired


def test_an_authorize_flood_never_pushes_out_another_clients_sign_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anyone may call /authorize with a registered client: its requests are capped per
    client, and when the store is full the client holding the most gives up its oldest."""
    from dataclasses import replace

    from agnes_mcp.oauth import pending

    monkeypatch.setattr(pending, "MAX_ENTRIES", 60)
    clock = SecondsClock()
    store = PendingStore(clock=clock)
    victim = replace(pending_request(store, clock.now + 600), client_id="claude-code")
    store.add_request(victim)
    flood = [
        replace(pending_request(store, clock.now + 600), client_id=f"attacker-{i % 7}")
        for i in range(1_000)
    ]
    for request in flood:
        store.add_request(request)
    assert store.request(victim.id) == victim  # the other client's sign-in is still there
    alive = [r for r in flood if store.request(r.id) is not None]
    per_client = {c: sum(r.client_id == c for r in alive) for c in {r.client_id for r in alive}}
    assert max(per_client.values()) <= pending.PER_CLIENT and len(alive) < pending.MAX_ENTRIES
    assert store.take_request(flood[-1].id) == flood[-1]  # the newest of each client stays
    spread = [
        replace(pending_request(store, clock.now + 600), client_id=f"one-{i}") for i in range(40)
    ]
    for request in spread:  # clients of one request each arrive: the flooders give way
        store.add_request(request)
    assert store.request(victim.id) == victim and store.request(spread[-1].id) is not None


# --- redirect URIs and registration ---------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/oauth/callback?x=1",
        "http://127.0.0.1:53682/callback",
        "http://127.0.0.1/callback",
        "http://localhost:8080/callback",
        "http://[::1]:8080/callback",
    ],
)
def test_accepted_redirect_uris(uri: str) -> None:
    assert redirect_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://app.example.com/callback", "loopback"),
        ("http://127.0.0.1.example.com/callback", "loopback"),  # looks loopback, is not
        ("http://localhost.example.com/callback", "loopback"),
        ("myapp://callback", "only https://"),
        ("javascript:alert(1)", "only https://"),
        ("file:///etc/passwd", "only https://"),
        ("https:///callback", "only https://"),  # no host
        ("https://app.example.com/callback#top", "fragment"),
        ("http://127.0.0.1:53682/callback#top", "fragment"),
        ("https://user:secret@app.example.com/callback", "user info"),
        ("http://user@127.0.0.1/callback", "user info"),
    ],
)
def test_refused_redirect_uris(uri: str, why: str) -> None:
    problem = redirect_problem(uri)
    assert problem is not None and why in problem


def registered(*uris: str) -> RegisteredClient:
    return RegisteredClient(client_id="client-1", redirect_uris=[AnyUrl(u) for u in uris])


@pytest.mark.parametrize(
    "requested",
    [
        LOOPBACK,
        "http://127.0.0.1:40000/callback",  # another port: the client picked a free one
        "http://127.0.0.1/callback",
    ],
)
def test_a_loopback_redirect_matches_on_any_port(requested: str) -> None:
    assert str(registered(LOOPBACK).validate_redirect_uri(AnyUrl(requested))) == requested


@pytest.mark.parametrize(
    ("registered_uri", "requested"),
    [
        (LOOPBACK, "http://127.0.0.1:53682/other"),  # another path
        (LOOPBACK, "http://localhost:53682/callback"),  # another host, even a loopback one
        (LOOPBACK, "http://127.0.0.1:40000/callback?next=x"),  # another query
        (LOOPBACK, "https://127.0.0.1:53682/callback"),  # another scheme
        # user info: the consent page named "evil.example.com" as the app's destination
        (LOOPBACK, "http://evil.example.com@127.0.0.1:53682/callback"),
        (LOOPBACK, "http://user:secret@127.0.0.1:40000/callback"),
        (LOOPBACK, "http://127.0.0.1:40000/callback#x"),  # a fragment
        ("https://app.example.com/callback", "https://app.example.com:8443/callback"),
        ("https://app.example.com/callback", "https://evil.example.com/callback"),
    ],
)
def test_other_redirects_must_match_exactly(registered_uri: str, requested: str) -> None:
    with pytest.raises(InvalidRedirectUriError):
        registered(registered_uri).validate_redirect_uri(AnyUrl(requested))


def test_no_redirect_uri_means_the_only_registered_one() -> None:
    assert str(registered(LOOPBACK).validate_redirect_uri(None)) == LOOPBACK
    with pytest.raises(InvalidRedirectUriError):
        registered(LOOPBACK, "https://app.example.com/cb").validate_redirect_uri(None)


def client_info(**fields: object) -> OAuthClientInformationFull:
    fields.setdefault("redirect_uris", [LOOPBACK])
    return OAuthClientInformationFull(client_id="client-1", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        (
            {"redirect_uris": [f"http://127.0.0.1:{p}/cb" for p in range(1, 12)]},
            "invalid_redirect_uri",
        ),
        ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
        ({"client_name": "x" * 101}, "invalid_client_metadata"),
    ],
)
def test_registration_refusals(fields: dict[str, object], error: str) -> None:
    with pytest.raises(RegistrationError) as caught:
        check_registration(client_info(**fields))
    assert caught.value.error == error


def test_a_client_is_stored_with_a_hashed_secret_and_a_clean_name() -> None:
    info = client_info(client_name="  My\n  App ", client_secret="s3cret-value")
    check_registration(info)
    record = to_record(info, "198.51.100.7")
    assert record.client_name == "My App" and record.created_ip == "198.51.100.7"
    assert record.secret_hash == secret_hash("s3cret-value")
    assert "s3cret-value" not in record.model_dump_json()
    back = from_record(record)
    assert isinstance(back, RegisteredClient) and back.client_secret is None
    assert [str(u) for u in back.redirect_uris or []] == [LOOPBACK]
    assert display_name(client_info(client_name="   ")) == UNNAMED
    assert display_name(client_info()) == UNNAMED
