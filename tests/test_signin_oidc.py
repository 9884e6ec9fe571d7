"""Sign-in through an OIDC provider, end to end against a local one (tests/fake_oidc.py)."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agnes_mcp.auth.sessions import SESSION_COOKIE
from agnes_mcp.builtin_groups import EVERYONE_GROUP_ID
from agnes_mcp.errors import SessionExpired
from agnes_mcp.signin import provider_deadline
from agnes_mcp.signin.flow import FLOW_COOKIE
from agnes_mcp.signin.identity import identity_from_claims
from agnes_mcp.signin.jwks import usable_key_set
from agnes_mcp.signin.problems import SignInRefused
from tests.conftest import LiveServer, add_user, running_server
from tests.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeOidc, FakeOidcServer
from tests.test_signin_token import set_cookie_headers

SECRET_ENV = "TEST_OIDC_CLIENT_SECRET"


def oidc_settings(discovery_url: str) -> dict[str, object]:
    return {
        "auth": {
            "oidc": {
                "discovery_url": discovery_url,
                "client_id": CLIENT_ID,
                "client_secret_env": SECRET_ENV,
                "button_label": "Sign in with Example ID",
            }
        }
    }


@pytest.fixture(autouse=True)
def _client_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeOidcServer]:
    with FakeOidcServer() as server:
        yield server


@pytest.fixture
def provider(idp: FakeOidcServer) -> Iterator[FakeOidc]:
    yield idp.provider
    idp.provider.claims = {}
    idp.provider.sign_with_stranger = idp.provider.token_error = False
    idp.provider.auth_methods = ["client_secret_basic"]
    idp.provider.claims_in_userinfo = False
    idp.provider.userinfo_sub = None
    idp.provider.hidden_claims = ("email", "email_verified", "name")
    idp.provider.userinfo_extra = {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, idp: FakeOidcServer) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("oidc") / "data"
    with pytest.MonkeyPatch.context() as patch:  # the start checks the secret is set
        patch.setenv(SECRET_ENV, CLIENT_SECRET)
        with running_server(data, **oidc_settings(idp.discovery_url)) as live:
            yield live


def oidc_sign_in(client: httpx.Client, next_path: str = "") -> tuple[httpx.Response, str, str]:
    """Start, let the provider redirect back, follow it: (our answer, callback URL, flow cookie)."""
    start = client.get("/auth/oidc/start", params={"next": next_path} if next_path else None)
    assert start.status_code == 303, start.text
    flow_cookie = client.cookies[FLOW_COOKIE]
    at_provider = httpx.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["location"]
    return client.get(callback), callback, flow_cookie


def browser(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


def test_first_sign_in_creates_the_user_in_everyone(server: LiveServer, provider: FakeOidc) -> None:
    with browser(server) as client:
        page = client.get("/auth/login", params={"next": "/me?tab=tokens"})
        assert "Sign in with Example ID" in page.text
        assert "/auth/oidc/start?next=%2Fme%3Ftab%3Dtokens" in page.text
        provider.person("new.person@example.com", name="New Person", hd="example.com")
        landed, _, _ = oidc_sign_in(client, "/me?tab=tokens")
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/me?tab=tokens"
        assert set_cookie_headers(landed, SESSION_COOKIE)
        assert "new.person@example.com" in client.get("/auth/login").text
    user = server.services.users.by_email("new.person@example.com")
    assert user is not None and user.active and user.name == "New Person"
    assert server.services.groups.group_ids_of(user.id) == {EVERYONE_GROUP_ID}
    sent = provider.token_requests[-1]
    assert sent["redirect_uri"] == f"{server.base_url}/auth/oidc/callback"
    assert len(sent["code_verifier"]) >= 43  # PKCE; the provider checked it against S256
    with browser(server) as client:  # the second time finds the same user
        landed, _, _ = oidc_sign_in(client)
        assert landed.headers["location"] == "/me"
        first = client.cookies[SESSION_COOKIE]
        oidc_sign_in(client)  # signing in again replaces this browser's session
        with pytest.raises(SessionExpired):
            server.services.web_sessions.verify(first)
    assert [u.email for u in server.services.users.all()].count("new.person@example.com") == 1
    server.services.write_behind.flush()
    actions = [(r.action, r.result) for r in server.services.audit_log.recent(user_id=user.id)]
    assert actions.count(("auth.sign_in", "ok")) == 3 and ("user.create", "ok") in actions


def test_an_unusable_key_in_the_jwks_does_not_stop_sign_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One key the client could not read (bad base64, an unknown curve, no 'kty') made
    the whole JWKS 'not valid': nobody could sign in, though the key signing the ID
    tokens was there. RFC 7517 §5: keys a client cannot use are ignored."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    with FakeOidcServer() as idp:
        idp.provider.extra_keys = [
            {"kty": "RSA", "kid": "broken", "n": "!!not base64!!", "e": "AQAB"},
            {"kty": "EC", "kid": "odd-curve", "crv": "P-999", "x": "AA", "y": "AA"},
            {"kid": "no-type"},
            "not a key",
            {"kty": "future-kind", "kid": "later"},
        ]
        idp.provider.person("jwks.tolerant@example.com")
        with (
            running_server(tmp_path / "data", **oidc_settings(idp.discovery_url)) as live,
            browser(live) as client,
        ):
            landed, _, _ = oidc_sign_in(client)
            assert landed.status_code == 303, landed.text
            assert set_cookie_headers(landed, SESSION_COOKIE)
            again, _, _ = oidc_sign_in(client)  # the keys are read from the cache
            assert again.status_code == 303, again.text


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong_domain", "Accounts of other.example.org may not sign in here"),
        ("wrong_hd", "belongs to the organisation other.example.org"),
        ("unverified", "has not verified the address"),
        ("bad_signature", "signature does not match"),
        ("wrong_nonce", "'nonce' claim is wrong"),
        ("wrong_aud", "'aud' claim is wrong"),
        ("wrong_iss", "'iss' claim is wrong"),
        ("expired", "has expired"),
    ],
)
def test_a_bad_identity_is_refused_with_a_clear_page(
    server: LiveServer, provider: FakeOidc, case: str, message: str
) -> None:
    email = f"{case}@example.com"
    provider.person(email)
    if case == "wrong_domain":
        email = "someone@other.example.org"
        provider.person(email)
    elif case == "wrong_hd":
        provider.claims["hd"] = "other.example.org"
    elif case == "unverified":
        provider.claims["email_verified"] = False
    elif case == "bad_signature":
        provider.sign_with_stranger = True
    elif case == "wrong_nonce":
        provider.claims["nonce"] = "not-the-nonce-we-sent"
    elif case == "wrong_aud":
        provider.claims["aud"] = "another-client"
    elif case == "wrong_iss":
        provider.claims["iss"] = "https://impostor.example.com"
    elif case == "expired":
        provider.claims["exp"] = int(time.time()) - 3600
    with browser(server) as client:
        refused, _, _ = oidc_sign_in(client)
        assert refused.status_code == 403
        assert "Sign-in refused" in refused.text and message in html.unescape(refused.text)
        assert not set_cookie_headers(refused, SESSION_COOKIE)
        assert "name='token'" in client.get("/auth/login").text  # not signed in
    assert server.services.users.by_email(email) is None


def test_the_address_given_only_at_userinfo_signs_in(
    server: LiveServer, provider: FakeOidc
) -> None:
    """OpenID Connect Core 5.4: with the code flow the email scope's claims may come only
    from the UserInfo endpoint; they count only for the ID token's own ``sub``."""
    provider.person("info.only@example.com", name="Info Only")
    provider.claims_in_userinfo = True
    with browser(server) as client:
        landed, _, _ = oidc_sign_in(client)
        assert landed.status_code == 303, landed.text
    user = server.services.users.by_email("info.only@example.com")
    assert user is not None and user.name == "Info Only"
    provider.person("someone.else@example.com")
    provider.userinfo_sub = "sub-of-another-person"
    with browser(server) as client:
        refused, _, _ = oidc_sign_in(client)
        assert refused.status_code == 403
        assert "about another person" in html.unescape(refused.text)
    assert server.services.users.by_email("someone.else@example.com") is None
    # the ID token's address unverified there; userinfo verifies another address only
    provider.person("token.address@example.com")
    provider.userinfo_sub = None
    provider.hidden_claims = ("email_verified",)
    provider.userinfo_extra = {"email": "other.address@example.com", "email_verified": True}
    with browser(server) as client:
        refused, _, _ = oidc_sign_in(client)
        assert refused.status_code == 403
        assert "has not verified the address" in html.unescape(refused.text)
    assert server.services.users.by_email("token.address@example.com") is None


def test_a_replayed_or_foreign_callback_is_refused(server: LiveServer, provider: FakeOidc) -> None:
    provider.person("replay@example.com")
    with browser(server) as client:
        landed, callback, flow_cookie = oidc_sign_in(client)
        assert landed.status_code == 303
    with httpx.Client(timeout=30, cookies={FLOW_COOKIE: flow_cookie}) as thief:
        again = thief.get(callback)
        assert again.status_code == 403 and "already used" in again.text
        assert not set_cookie_headers(again, SESSION_COOKIE)
    with browser(server) as stranger:  # a callback this browser did not start
        foreign = stranger.get(callback)
        assert foreign.status_code == 403 and "not started in this browser" in foreign.text
    with browser(server) as client:  # a state that is not the one this browser sent
        client.get("/auth/oidc/start")
        forged = client.get("/auth/oidc/callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 403 and "does not belong" in forged.text


def test_a_deactivated_user_is_refused(server: LiveServer, provider: FakeOidc) -> None:
    user = add_user(server.services, email="gone@example.com")
    server.services.users.set_active(user.id, False)
    provider.person("gone@example.com")
    with browser(server) as client:
        refused, _, _ = oidc_sign_in(client)
    assert refused.status_code == 403
    assert "Account deactivated" in refused.text and "Ask an admin" in refused.text
    assert not set_cookie_headers(refused, SESSION_COOKIE)
    server.services.write_behind.flush()
    rows = server.services.audit_log.recent(user_id=user.id)
    assert [(r.action, r.result) for r in rows] == [("auth.sign_in", "user_inactive")]


def test_a_token_endpoint_error_is_a_clear_page(server: LiveServer, provider: FakeOidc) -> None:
    provider.person("late@example.com")
    provider.token_error = True
    with browser(server) as client:
        failed, _, _ = oidc_sign_in(client)
    assert failed.status_code == 502
    assert "token endpoint" in failed.text and "HTTP 500" in failed.text
    assert CLIENT_SECRET not in failed.text


def test_a_provider_down_or_talking_garbage_leaves_the_server_up(tmp_path: Path) -> None:
    with FakeOidcServer() as idp:
        idp.provider.garbage_discovery = True
        with (
            running_server(tmp_path / "data", **oidc_settings(idp.discovery_url)) as live,
            browser(live) as client,
        ):
            garbage = client.get("/auth/oidc/start")
            assert garbage.status_code == 502
            assert "discovery document" in garbage.text and "not valid JSON" in garbage.text
            assert client.get("/healthz").status_code == 200
            idp.__exit__(None, None, None)  # the provider goes away
            down = client.get("/auth/oidc/start")
            assert down.status_code == 502 and "Could not reach" in down.text
            assert "name='token'" in client.get("/auth/login").text
            assert client.get("/healthz").status_code == 200


def test_google_requires_a_hosted_domain() -> None:
    claims = {"sub": "1", "email": "a@example.com", "email_verified": True}
    with pytest.raises(SignInRefused, match="not a company"):
        identity_from_claims(claims, ["example.com"], require_hd=True)
    found = identity_from_claims(claims | {"hd": "example.com"}, ["example.com"], require_hd=True)
    assert found.email == "a@example.com"
    assert identity_from_claims(claims, ["example.com"], require_hd=False).email == "a@example.com"


def test_the_client_secret_goes_the_way_discovery_says(tmp_path: Path) -> None:
    """A provider that takes the secret only in the form (``client_secret_post``) signs the
    person in; one that takes neither way we know says so before the browser leaves."""
    with FakeOidcServer() as idp:
        idp.provider.auth_methods = ["private_key_jwt", "client_secret_post"]
        idp.provider.person("poster@example.com")
        with (
            running_server(tmp_path / "data", **oidc_settings(idp.discovery_url)) as live,
            browser(live) as client,
        ):
            landed, _, _ = oidc_sign_in(client)
            assert landed.status_code == 303, landed.text
            assert live.services.users.by_email("poster@example.com") is not None
            sent = idp.provider.token_requests[-1]
            assert sent["client_id"] == CLIENT_ID and sent["client_secret"] == CLIENT_SECRET
    with FakeOidcServer() as idp:
        idp.provider.auth_methods = ["private_key_jwt"]
        with (
            running_server(tmp_path / "data2", **oidc_settings(idp.discovery_url)) as live,
            browser(live) as client,
        ):
            refused = client.get("/auth/oidc/start")
            assert refused.status_code == 502
            assert "only as private_key_jwt" in html.unescape(refused.text)
            assert CLIENT_SECRET not in refused.text


def test_a_discovery_document_naming_another_issuer_is_refused(tmp_path: Path) -> None:
    """Discovery 1.0 section 4.3: the issuer is the URL the document was fetched under;
    one naming another (a mix-up, a copied document) would have ID tokens of that other
    issuer accepted."""
    with FakeOidcServer() as idp:
        idp.provider.discovery_issuer = "https://other-provider.example.com"
        with (
            running_server(tmp_path / "data", **oidc_settings(idp.discovery_url)) as live,
            browser(live) as client,
        ):
            refused = client.get("/auth/oidc/start")
            assert refused.status_code == 502
            text = html.unescape(refused.text)
            assert "names the issuer https://other-provider.example.com" in text
            idp.provider.discovery_issuer = idp.url + "/"  # a trailing slash is the same
            # (the refused document was not cached)
            assert client.get("/auth/oidc/start").status_code == 303


def test_a_client_secret_with_any_characters_reaches_the_token_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 6749 section 2.3.1: HTTP Basic carries the id and secret form-urlencoded; sent
    raw, a '+' or '%' in a secret reached the provider as another secret, and a character
    outside Latin-1 failed the exchange as 'not a token response'."""
    secret = "Ab+c/d%e=f:g h~\u00e9\u20ac"
    monkeypatch.setenv(SECRET_ENV, secret)
    with FakeOidcServer() as idp:
        idp.provider.client_secret = secret
        idp.provider.person("plus.secret@example.com")
        with (
            running_server(tmp_path / "data", **oidc_settings(idp.discovery_url)) as live,
            browser(live) as client,
        ):
            landed, _, _ = oidc_sign_in(client)
            assert landed.status_code == 303, html.unescape(landed.text)
            assert live.services.users.by_email("plus.secret@example.com") is not None


def test_a_provider_trickling_its_answer_fails_the_sign_in_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx's timeout bounds each read: a JWKS trickling in a byte at a time (a stalled
    proxy) held the sign-in for ever, and every other sign-in waited behind it on the
    provider's lock. Each answer now has a deadline in all."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setattr(provider_deadline, "ANSWER_SECONDS", 1.0)
    with FakeOidcServer() as idp:
        idp.provider.trickle_jwks = True
        idp.provider.person("slow.provider@example.com")
        with (
            running_server(tmp_path / "data", **oidc_settings(idp.discovery_url)) as live,
            httpx.Client(base_url=live.base_url, timeout=15) as client,
        ):
            failed, _, _ = oidc_sign_in(client)
            assert failed.status_code == 502, failed.text
            assert "had not fully arrived after 1 s" in html.unescape(failed.text)
            idp.provider.trickle_jwks = False  # the next sign-in is not stuck behind it
            landed, _, _ = oidc_sign_in(client)
            assert landed.status_code == 303, landed.text


def test_a_jwks_with_no_usable_key_is_refused() -> None:
    broken = {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}
    encrypting = FakeOidc().key.as_dict(private=False) | {"use": "enc"}
    for document in ({"keys": [broken, encrypting]}, {"keys": "x"}, [broken], {}):
        assert usable_key_set(document) is None
    assert usable_key_set({"keys": [broken, FakeOidc().key.as_dict(private=False)]})
