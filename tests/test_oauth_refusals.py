"""What the authorization server refuses, each with its OAuth error, driven by hand with
raw httpx: registration, ``/authorize``, the consent form, ``/token`` and the tokens at
``/mcp`` afterwards (expiry, replay, revocation, a deactivated user, a removed grant)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.users import User
from tests.oauth_harness import (
    REDIRECT_URI,
    REQUEST_FIELD,
    TABLE,
    OAuthWorld,
    RawClient,
    consent,
    consent_page,
    mcp_post,
    new_address,
    oauth_world,
    pkce,
    register_client,
    signed_in_browser,
)
from tests.test_signin_token import form_csrf

REGISTRATIONS_PER_HOUR = 2
OTHER_RESOURCE = "https://other.example.com/mcp"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthWorld]:
    # The loopback "proxy" is trusted so each registration can come from its own address
    # (X-Forwarded-For): the per-address limit is tested without starting a second server.
    with oauth_world(
        tmp_path_factory.mktemp("oauth-refusals"),
        trusted_proxies=["127.0.0.1"],
        auth={"oauth": {"registrations_per_hour": REGISTRATIONS_PER_HOUR}},
    ) as made:
        yield made


@pytest.fixture
def http(world: OAuthWorld) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.live.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def analyst(world: OAuthWorld) -> tuple[User, str]:
    return world.analyst()


@pytest.fixture
def browser(world: OAuthWorld, analyst: tuple[User, str]) -> Iterator[httpx.Client]:
    with signed_in_browser(world.live.base_url, analyst[1]) as client:
        yield client


@pytest.fixture
def client(http: httpx.Client) -> RawClient:
    return RawClient.registered(http)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query of a redirect to the client's redirect URI."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def error_of(response: httpx.Response) -> str:
    error: str = response.json()["error"]
    return error


# --- /authorize -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "mentions"),
    [
        ({}, "code_challenge"),  # no PKCE at all
        ({"code_challenge_method": "plain"}, "code_challenge_method"),
    ],
    ids=["no-pkce", "plain-pkce"],
)
def test_authorize_needs_s256_pkce(
    client: RawClient, browser: httpx.Client, extra: dict[str, str], mentions: str
) -> None:
    _, challenge = pkce()
    url = client.authorize_url(None if not extra else challenge, state="s-1", **extra)
    params = redirect_params(browser.get(url))
    assert params["error"] == "invalid_request" and params["state"] == "s-1"
    assert mentions in params["error_description"]
    assert "code" not in params


@pytest.mark.parametrize("registered", [{}, {"scope": ""}], ids=["no-scope", "empty-scope"])
@pytest.mark.parametrize("asked", ["data", ""])
def test_an_empty_scope_is_the_default_scope(
    http: httpx.Client, browser: httpx.Client, registered: dict[str, str], asked: str
) -> None:
    """RFC 6749 section 3.1: a parameter sent without a value is as if it were left out, at
    registration (``"scope": ""``) and at ``/authorize`` (``scope=``): both mean ``data``."""
    client = RawClient.registered(http, **registered)
    verifier, challenge = pkce()
    callback = consent(browser, client.authorize_url(challenge, scope=asked))
    assert "code" in callback, callback
    answer = client.exchange(callback["code"], verifier)
    assert answer.status_code == 200 and answer.json()["scope"] == "data", answer.text


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("blank", ["redirect_uri", "code_challenge_method", "scope"])
def test_a_parameter_without_a_value_is_as_if_left_out(
    client: RawClient, browser: httpx.Client, blank: str, method: str
) -> None:
    """RFC 6749 section 3.1: ``redirect_uri=`` is the one registered, ``scope=`` the
    default, ``code_challenge_method=`` S256; the sign-in goes on to the consent page."""
    _, challenge = pkce()
    url = client.authorize_url(challenge, **{blank: ""})
    if method == "GET":
        to_consent = browser.get(url)
    else:
        path, _, query = url.partition("?")
        to_consent = browser.post(path, data=dict(parse_qsl(query, keep_blank_values=True)))
    assert to_consent.status_code == 302, to_consent.text
    assert "/oauth/consent?request=" in to_consent.headers["location"], to_consent.headers


def test_a_blank_redirect_uri_at_token_is_as_if_left_out(
    client: RawClient, browser: httpx.Client
) -> None:
    verifier, challenge = pkce()
    callback = consent(browser, client.authorize_url(challenge, redirect_uri=""))
    answer = client.token(
        grant_type="authorization_code",
        code=callback["code"],
        code_verifier=verifier,
        redirect_uri="",
        scope="",
    )
    assert answer.status_code == 200, answer.text


def test_a_registration_answer_holding_a_secret_is_not_stored(http: httpx.Client) -> None:
    answer = register_client(http, token_endpoint_auth_method="client_secret_post")
    assert answer.status_code == 201 and answer.json()["client_secret"], answer.text
    assert answer.headers["cache-control"] == "no-store", answer.headers
    assert answer.headers["pragma"] == "no-cache", answer.headers


def test_a_registration_with_an_empty_scope_is_given_the_default(http: httpx.Client) -> None:
    answer = register_client(http, scope="")
    assert answer.status_code == 201 and answer.json()["scope"] == "data", answer.text


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"state": "s" * 3_000}, "state may be at most 2,048 characters"),
        ({"code_challenge": "c" * 200}, "code_challenge must be 43 to 128 characters"),
        ({"scope": "data " * 1_000}, "scope may be at most 4,096 characters"),
    ],
    ids=["state", "challenge", "other"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_parameters_too_large_to_hold_are_refused_up_front(
    client: RawClient,
    browser: httpx.Client,
    extra: dict[str, str],
    said: str,
    method: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each pending sign-in holds its request until consent: a 1 MB state or challenge
    multiplied by the store's 10,000 places took ~19 GB. Refused at once, no redirect
    (nothing of it is echoed), no traceback logged."""
    _, challenge = pkce()
    if method == "POST" and "state" in extra:
        extra = {"state": "s" * 1_000_000}  # a form field past Starlette's 1 MB too
    url = client.authorize_url(challenge, **extra)
    if method == "GET":
        refused = browser.get(url)
    else:
        path, _, query = url.partition("?")
        refused = browser.post(
            path, content=query, headers={"content-type": "application/x-www-form-urlencoded"}
        )
    assert refused.status_code == 400 and "location" not in refused.headers
    assert error_of(refused) == "invalid_request" and said in refused.text
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("https://exa%2emple.com/cb", "not a plain host name"),  # was kept as exa.mple.com
        ("https://\u0441laude.ai/cb", "xn--laude-0ye.ai"),  # a Cyrillic look-alike of claude.ai
        ("http://127.0.0.1:99999/cb", "port that is not a number"),
    ],
)
def test_a_redirect_uri_is_registered_only_as_written(
    http: httpx.Client, uri: str, said: str
) -> None:
    """A redirect URI's host with '%xx' escapes or non-ASCII letters was quietly rewritten
    (https://exa%2emple.com/cb registered as https://exa.mple.com/cb): the client and the
    consent page named different hosts. Refused, with the one host rule every URL follows."""
    refused = register_client(http, [uri], address=new_address())
    assert refused.status_code == 400 and error_of(refused) == "invalid_redirect_uri"
    assert said in refused.text


def test_client_metadata_is_bounded(http: httpx.Client) -> None:
    long_uri = "http://127.0.0.1:53682/" + "p" * 3000
    refused = register_client(http, [long_uri], address=new_address())
    assert refused.status_code == 400 and error_of(refused) == "invalid_redirect_uri"
    assert "at most 2,000 characters" in refused.text
    bulky = register_client(http, address=new_address(), software_id="x" * 20_000)
    assert bulky.status_code == 400 and error_of(bulky) == "invalid_client_metadata"
    assert "at most 16,384 are accepted" in bulky.text and len(bulky.content) < 1000
    assert register_client(http, address=new_address()).status_code == 201


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:53682/elsewhere",  # a registered host and port, another path
        "http://localhost:53682/callback",  # another loopback name
        "https://attacker.example.com/callback",
    ],
)
def test_an_unregistered_redirect_uri_gets_no_redirect(
    client: RawClient, browser: httpx.Client, redirect_uri: str
) -> None:
    _, challenge = pkce()
    refused = browser.get(client.authorize_url(challenge, redirect_uri=redirect_uri))
    assert refused.status_code == 400 and "location" not in refused.headers
    assert error_of(refused) == "invalid_request"
    assert "not registered" in refused.json()["error_description"]


def test_a_loopback_redirect_may_use_another_port(client: RawClient, browser: httpx.Client) -> None:
    verifier, challenge = pkce()
    moved = dataclasses.replace(client, redirect_uri="http://127.0.0.1:40001/callback")
    page = consent_page(browser, moved.authorize_url(challenge))
    assert "127.0.0.1:40001 (an app on this computer)" in page.text
    callback = consent(browser, moved.authorize_url(challenge))
    assert moved.exchange(callback["code"], verifier).status_code == 200


def test_an_unknown_client_gets_no_redirect(http: httpx.Client) -> None:
    _, challenge = pkce()
    stranger = RawClient(http, "no-such-client")
    refused = http.get(stranger.authorize_url(challenge))
    assert refused.status_code == 400 and "location" not in refused.headers
    assert error_of(refused) == "invalid_request"
    # A browser (a person, whose application waits) is shown a page saying what to do.
    shown = http.get(stranger.authorize_url(challenge), headers={"Accept": "text/html"})
    assert shown.status_code == 400 and "location" not in shown.headers
    assert shown.headers["content-type"].startswith("text/html")
    assert "Client ID &#x27;no-such-client&#x27; not found" in shown.text, shown.text
    assert "remove this server from the application" in shown.text


def http_base(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def test_a_token_for_another_resource_is_refused_at_authorize(
    client: RawClient, browser: httpx.Client
) -> None:
    _, challenge = pkce()
    url = client.authorize_url(challenge, resource=OTHER_RESOURCE, state="s-2")
    params = redirect_params(browser.get(url))
    assert params["error"] == "invalid_target" and params["state"] == "s-2"
    assert OTHER_RESOURCE in params["error_description"]
    # RFC 9207: an error sent back to the client names the issuer too, as the metadata says
    issuer = http_base(browser)
    assert params["iss"] == issuer


# --- /token -----------------------------------------------------------------------------


def test_a_wrong_code_verifier_is_refused(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, analyst: tuple[User, str]
) -> None:
    verifier, challenge = pkce()
    callback = consent(browser, client.authorize_url(challenge))
    refused = client.exchange(callback["code"], pkce()[0])
    assert error_of(refused) == "invalid_grant", refused.text
    assert "code_verifier" in refused.json()["error_description"]
    assert "access_token" not in refused.json()
    assert world.live.services.oauth.grants(user_id=analyst[0].id) == []
    missing = client.token(
        grant_type="authorization_code", code=callback["code"], redirect_uri=client.redirect_uri
    )
    assert error_of(missing) == "invalid_request" and "code_verifier" in missing.text
    assert client.exchange(callback["code"], verifier).status_code == 200


def test_a_code_is_bound_to_its_client_and_redirect(
    world: OAuthWorld,
    client: RawClient,
    browser: httpx.Client,
    http: httpx.Client,
    analyst: tuple[User, str],
) -> None:
    verifier, challenge = pkce()
    callback = consent(browser, client.authorize_url(challenge))
    other = RawClient.registered(http)
    stolen = other.exchange(callback["code"], verifier)
    assert error_of(stolen) == "invalid_grant" and "access_token" not in stolen.json()
    moved = dataclasses.replace(client, redirect_uri="http://127.0.0.1:40001/callback")
    elsewhere = moved.exchange(callback["code"], verifier)
    # RFC 6749 section 5.2: a redirect_uri unlike the authorization request's is invalid_grant
    assert elsewhere.status_code == 400 and error_of(elsewhere) == "invalid_grant"
    assert "redirect_uri" in elsewhere.json()["error_description"]
    assert elsewhere.headers["cache-control"] == "no-store"
    # ... and one left out is a malformed request (the field is required when /authorize had it)
    unnamed = client.token(
        grant_type="authorization_code", code=callback["code"], code_verifier=verifier
    )
    assert unnamed.status_code == 400 and error_of(unnamed) == "invalid_request"
    assert world.live.services.oauth.grants(user_id=analyst[0].id) == []
    assert client.exchange(callback["code"], verifier).status_code == 200


def test_an_unknown_consent_request_is_explained(browser: httpx.Client) -> None:
    page = browser.get("/oauth/consent", params={"request": "never-issued"})
    assert page.status_code == 400 and "expired or was already answered" in page.text
    assert "name='decision'" not in page.text


@pytest.mark.parametrize(
    ("grant_type", "error"),
    [
        ("urn:ietf:params:oauth:grant-type:token-exchange", "unsupported_grant_type"),
        ("urn:ietf:params:oauth:grant-type:jwt-bearer", "unsupported_grant_type"),
        ("password", "unsupported_grant_type"),
        ("client_credentials", "unsupported_grant_type"),
        (None, "invalid_request"),
    ],
)
def test_a_grant_type_not_offered_is_unsupported_grant_type(
    client: RawClient, http: httpx.Client, grant_type: str | None, error: str
) -> None:
    """RFC 6749 section 5.2; it was invalid_request with a validation library's text,
    naming jwt-bearer, which the metadata does not offer."""
    form = {"grant_type": grant_type} if grant_type else {}
    answer = client.token(**form)
    assert answer.status_code == 400 and error_of(answer) == error
    said = answer.json()["error_description"]
    assert "authorization_code, refresh_token" in said and "Input tag" not in said
    offered = http.get("/.well-known/oauth-authorization-server").json()
    assert offered["grant_types_supported"] == ["authorization_code", "refresh_token"]


def test_a_code_used_twice_revokes_what_it_gave(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, http: httpx.Client
) -> None:
    verifier, challenge = pkce()
    callback = consent(browser, client.authorize_url(challenge))
    first = client.exchange(callback["code"], verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert mcp_post(http, tokens["access_token"]).status_code == 200
    second = client.exchange(callback["code"], verifier)
    assert error_of(second) == "invalid_grant", second.text
    assert "access_token" not in second.json()
    refused = mcp_post(http, tokens["access_token"])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"
    assert error_of(client.refresh(tokens["refresh_token"])) == "invalid_grant"
    grant = world.live.services.oauth.grant_of(tokens["access_token"])
    assert grant is not None and grant.revoked_why == "its authorization code was used twice"
    assert replay_audited(world, grant.id) == "its authorization code was used twice"


def test_a_token_for_another_resource_is_refused_at_token(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, analyst: tuple[User, str]
) -> None:
    verifier, challenge = pkce()
    callback = consent(browser, client.authorize_url(challenge))
    refused = client.exchange(callback["code"], verifier, resource=OTHER_RESOURCE)
    assert refused.status_code == 400 and error_of(refused) == "invalid_target"
    assert world.live.services.oauth.grants(user_id=analyst[0].id) == []
    # the resource it was issued for, with a trailing slash, is the same resource
    fine = client.exchange(callback["code"], verifier, resource=client.resource + "/")
    assert fine.status_code == 200, fine.text
    rotated = client.refresh(fine.json()["refresh_token"], resource=OTHER_RESOURCE)
    assert error_of(rotated) == "invalid_target"


def test_a_token_is_bound_to_the_mcp_url_it_was_issued_for(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, http: httpx.Client
) -> None:
    tokens = client.tokens(browser)
    port = urlsplit(world.live.base_url).port
    assert mcp_post(http, tokens["access_token"]).status_code == 200
    elsewhere = mcp_post(http, tokens["access_token"], Host=f"localhost:{port}")
    assert elsewhere.status_code == 401
    assert elsewhere.json()["error"]["code"] == "token_wrong_resource"
    assert f"http://localhost:{port}/mcp" in elsewhere.json()["error"]["message"]
    assert 'error="invalid_token"' in elsewhere.headers["www-authenticate"]


def test_an_expired_access_token_is_refused_and_refresh_mends_it(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, http: httpx.Client
) -> None:
    services = world.live.services
    tokens = client.tokens(browser)
    assert mcp_post(http, tokens["access_token"]).status_code == 200  # cached as valid
    with services.store.transaction() as cur:  # bumps the generation: caches drop it
        cur.execute(
            "UPDATE oauth_tokens SET expires_at = now() - INTERVAL 1 HOUR "
            "WHERE kind = 'access' AND grant_id = ?",
            [services.oauth.grant_of(tokens["access_token"]).id],  # type: ignore[union-attr]
        )
    refused = mcp_post(http, tokens["access_token"])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_expired"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    renewed = client.refresh(tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert mcp_post(http, renewed.json()["access_token"]).status_code == 200


def test_an_expired_refresh_token_is_refused(
    world: OAuthWorld, client: RawClient, browser: httpx.Client
) -> None:
    services = world.live.services
    tokens = client.tokens(browser)
    with services.store.transaction() as cur:
        cur.execute(
            "UPDATE oauth_tokens SET expires_at = now() - INTERVAL 1 HOUR "
            "WHERE kind = 'refresh' AND grant_id = ?",
            [services.oauth.grant_of(tokens["refresh_token"]).id],  # type: ignore[union-attr]
        )
    refused = client.refresh(tokens["refresh_token"])
    assert error_of(refused) == "invalid_grant" and "expired" in refused.text
    assert "access_token" not in refused.json()


def test_a_refresh_token_reused_after_rotation_ends_the_family(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, http: httpx.Client
) -> None:
    tokens = client.tokens(browser)
    rotated = client.refresh(tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    successor = rotated.json()
    assert mcp_post(http, successor["access_token"]).status_code == 200
    replayed = client.refresh(tokens["refresh_token"])
    assert error_of(replayed) == "invalid_grant" and "access_token" not in replayed.json()
    # the client is told why, so it signs in again rather than retrying
    said = replayed.json()["error_description"]
    assert "revoked" in said and "a rotated refresh token was used again" in said
    assert said == client.refresh(tokens["refresh_token"]).json()["error_description"]
    refused = mcp_post(http, successor["access_token"])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"
    assert error_of(client.refresh(successor["refresh_token"])) == "invalid_grant"
    grant = world.live.services.oauth.grant_of(successor["access_token"])
    assert grant is not None and grant.revoked_why == "a rotated refresh token was used again"
    assert replay_audited(world, grant.id) == "a rotated refresh token was used again"


def replay_audited(world: OAuthWorld, grant_id: str) -> str:
    """The reason of the one audit row saying a replay revoked ``grant_id`` (the signs of a
    stolen token must reach the audit log, as every other revocation does)."""
    services = world.live.services
    services.write_behind.flush()
    (row,) = [
        r
        for r in services.audit_log.recent(limit=500)
        if r.action == "oauth.grant.revoke" and r.resource == grant_id
    ]
    assert row.params is not None and row.params["by"] == "replay" and row.client
    return str(row.params["why"])


def test_a_refresh_token_works_only_for_its_own_client(
    client: RawClient, browser: httpx.Client, http: httpx.Client
) -> None:
    tokens = client.tokens(browser)
    other = RawClient.registered(http, token_endpoint_auth_method="client_secret_post")
    stolen = other.refresh(tokens["refresh_token"])
    assert error_of(stolen) == "invalid_grant" and "access_token" not in stolen.json()
    # another client cannot revoke it either (RFC 7009: 200, and nothing happens)
    revoked = http.post(
        "/revoke",
        data={
            "token": tokens["access_token"],
            "client_id": other.client_id,
            "client_secret": other.client_secret or "",
        },
    )
    assert revoked.status_code == 200, revoked.text
    assert mcp_post(http, tokens["access_token"]).status_code == 200
    assert client.refresh(tokens["refresh_token"]).status_code == 200


def test_a_public_client_revokes_without_a_secret(
    client: RawClient, browser: httpx.Client, http: httpx.Client
) -> None:
    """RFC 7009 section 2.1 with a public client (``token_endpoint_auth_method=none``,
    as MCP desktop clients register): the client_id alone identifies it."""
    tokens = client.tokens(browser)
    revoked = http.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": client.client_id}
    )
    assert revoked.status_code == 200, revoked.text
    refused = mcp_post(http, tokens["access_token"])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"


# --- registration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://app.example.com/callback",  # plain http off loopback
        "myapp://callback",  # a custom scheme
        "https://app.example.com/callback#fragment",
        "https://user:secret@app.example.com/callback",
        # The response's own parameters: the answer would carry two, the planted one first.
        "http://127.0.0.1:5555/callback?state=planted",
        "https://app.example.com/callback?keep=1&code=planted",
    ],
)
def test_registration_refuses_unsafe_redirects(http: httpx.Client, redirect_uri: str) -> None:
    refused = register_client(http, [redirect_uri])
    assert refused.status_code == 400, refused.text
    assert error_of(refused) == "invalid_redirect_uri"
    assert "client_id" not in refused.json()


def test_registration_is_limited_per_address(http: httpx.Client) -> None:
    address = new_address()
    for _ in range(REGISTRATIONS_PER_HOUR):
        assert register_client(http, address=address).status_code == 201
    limited = register_client(http, address=address)
    assert limited.status_code == 429, limited.text
    assert error_of(limited) == "temporarily_unavailable"
    assert 0 < int(limited.headers["retry-after"]) <= 3600
    assert register_client(http, address=new_address()).status_code == 201


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_a_confidential_client_proves_itself_and_nothing_raw_is_stored(
    world: OAuthWorld, http: httpx.Client, browser: httpx.Client, method: str
) -> None:
    registered = register_client(http, token_endpoint_auth_method=method)
    assert registered.status_code == 201, registered.text
    info = registered.json()
    secret = info["client_secret"]
    assert secret and info["token_endpoint_auth_method"] == method
    basic = method == "client_secret_basic"
    # the secret goes in the form (post) or in an Authorization: Basic header (basic)
    posted = {} if basic else {"client_secret": secret}
    auth = httpx.BasicAuth(info["client_id"], secret) if basic else httpx.USE_CLIENT_DEFAULT
    client = RawClient(http, info["client_id"])

    verifier, challenge = pkce()
    callback = consent(browser, client.authorize_url(challenge))
    form = {
        "grant_type": "authorization_code",
        "client_id": client.client_id,
        "code": callback["code"],
        "code_verifier": verifier,
        "redirect_uri": client.redirect_uri,
    }
    wrong = http.post("/token", data={**form, "client_secret": "not-the-secret"})
    assert wrong.status_code == 401 and error_of(wrong) == "invalid_client"
    bare = http.post("/token", data=form)
    assert bare.status_code == 401 and error_of(bare) == "invalid_client"
    if basic:
        wrong_basic = http.post("/token", data=form, auth=httpx.BasicAuth(client.client_id, "x"))
        assert wrong_basic.status_code == 401 and error_of(wrong_basic) == "invalid_client"
    good = http.post("/token", data={**form, **posted}, auth=auth)
    assert good.status_code == 200, good.text
    tokens = good.json()

    raws = (secret, tokens["access_token"], tokens["refresh_token"], callback["code"])
    world.live.services.write_behind.flush()  # the audit rows of this exchange too
    with world.live.services.store.cursor() as cur:
        dumped = " ".join(
            str(cur.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("oauth_clients", "oauth_grants", "oauth_tokens", "audit_log")
        )
    assert info["client_id"] in dumped  # the scan sees the rows
    assert not [raw for raw in raws if raw in dumped]

    # the client revokes its token, proving itself the same way (RFC 7009 section 2.1)
    revoked = http.post(
        "/revoke",
        data={
            "token": tokens["access_token"],
            "client_id": client.client_id,
            **posted,
        },
        auth=auth,
    )
    assert revoked.status_code == 200, revoked.text
    assert mcp_post(http, tokens["access_token"]).status_code == 401


# --- the consent form -------------------------------------------------------------------


def test_consent_without_the_csrf_value_allows_nothing(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, analyst: tuple[User, str]
) -> None:
    verifier, challenge = pkce()
    page = consent_page(browser, client.authorize_url(challenge))
    request_id = REQUEST_FIELD.search(page.text)
    assert request_id
    for csrf in ({}, {"csrf": "forged-value"}):
        forged = browser.post(
            "/oauth/consent", data={"request": request_id[1], "decision": "allow", **csrf}
        )
        assert forged.status_code == 403 and "location" not in forged.headers
        assert "Nothing was allowed" in forged.text
    assert world.live.services.oauth.grants(user_id=analyst[0].id) == []
    # the request was not used up: the user's own answer still goes through
    answered = browser.post(
        "/oauth/consent",
        data={"csrf": form_csrf(page.text), "request": request_id[1], "decision": "allow"},
    )
    assert answered.status_code == 303
    code = parse_qs(urlsplit(answered.headers["location"]).query)["code"][0]
    assert client.exchange(code, verifier).status_code == 200
    # and answers once
    again = browser.post(
        "/oauth/consent",
        data={"csrf": form_csrf(page.text), "request": request_id[1], "decision": "allow"},
    )
    assert again.status_code == 400 and "location" not in again.headers


def test_consent_without_a_session_goes_to_login(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, http: httpx.Client
) -> None:
    _, challenge = pkce()
    page = consent_page(browser, client.authorize_url(challenge))
    request_id = REQUEST_FIELD.search(page.text)
    assert request_id
    anonymous = http.post(
        "/oauth/consent",
        data={"csrf": form_csrf(page.text), "request": request_id[1], "decision": "allow"},
    )
    assert anonymous.status_code == 303
    location = anonymous.headers["location"]
    assert location.startswith("/auth/login?next=") and "code=" not in location
    assert parse_qs(urlsplit(location).query)["next"] == [f"/oauth/consent?request={request_id[1]}"]


# --- what changes after consent ---------------------------------------------------------


def test_a_deactivated_user_loses_access_at_once(
    world: OAuthWorld,
    client: RawClient,
    browser: httpx.Client,
    http: httpx.Client,
    analyst: tuple[User, str],
) -> None:
    tokens = client.tokens(browser)
    assert mcp_post(http, tokens["access_token"]).status_code == 200
    world.live.services.users.set_active(analyst[0].id, False)
    refused = mcp_post(http, tokens["access_token"])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "user_inactive"
    renewed = client.refresh(tokens["refresh_token"])
    assert error_of(renewed) == "invalid_grant" and "deactivated" in renewed.text


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_removed_group_membership_takes_effect_on_the_next_query(
    world: OAuthWorld, client: RawClient, browser: httpx.Client, analyst: tuple[User, str]
) -> None:
    tokens = client.tokens(browser)
    sql = f"SELECT count(*) FROM {TABLE}"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as mcp_http,
        streamable_http_client(f"{world.live.base_url}/mcp", http_client=mcp_http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        allowed = await session.call_tool("query", {"sql": sql})
        assert not allowed.is_error and allowed.structured_content["rows"] == [[2]]
        world.live.services.groups.remove_member(
            world.group_id, analyst[0].id, MembershipSource.ADMIN
        )
        refused = await session.call_tool("query", {"sql": sql})
    assert refused.is_error
    assert refused.structured_content["error"]["code"] == "table_not_found"


def test_the_issuer_is_added_only_to_an_error_without_one() -> None:
    from agnes_mcp.oauth.routes import with_issuer

    base = "https://agnes.example.com"
    error = with_issuer("http://127.0.0.1:5/cb?error=access_denied&state=s", base)
    assert (
        error
        == "http://127.0.0.1:5/cb?error=access_denied&state=s&iss=https%3A%2F%2Fagnes.example.com"
    )
    success = "http://127.0.0.1:5/cb?code=c&state=s&iss=https%3A%2F%2Fagnes.example.com"
    assert with_issuer(success, base) == success
    assert with_issuer("http://127.0.0.1:5/cb?code=c", base) == "http://127.0.0.1:5/cb?code=c"


@pytest.mark.parametrize(
    ("redirect_uri", "source"),
    [
        ("http://127.0.0.1:5/cb", "http://127.0.0.1:5"),
        ("https://client.example.com/cb", "https://client.example.com"),
        ("http://[::1]:8765/cb", "http:"),  # CSP cannot name an IPv6 literal
        ("https://client.example.com;/cb", "https:"),  # nor a host that would end the directive
    ],
)
def test_the_consent_form_may_lead_to_the_redirect(redirect_uri: str, source: str) -> None:
    """The consent page's CSP ``form-action`` source for its redirect: one a browser can
    read, or Allow's redirect is blocked (``tests/test_admin_browser.py`` clicks it)."""
    from agnes_mcp.oauth.consent_page import form_action_source

    assert form_action_source(redirect_uri) == source


def test_clients_no_sign_in_used_are_forgotten_after_a_while(
    world: OAuthWorld, http: httpx.Client, browser: httpx.Client
) -> None:
    """Registration is open to anyone: a client never used is dropped once it is 30 days
    old (at the next registration); one a user signed in with stays."""
    from datetime import timedelta

    from agnes_mcp.oauth.provider import UNUSED_CLIENT_DAYS
    from agnes_mcp.store.ids import utcnow

    services = world.live.services
    unused = RawClient.registered(http, address=new_address())
    used = RawClient.registered(http, address=new_address())
    assert "access_token" in used.tokens(browser)
    recent = RawClient.registered(http, address=new_address())
    old = utcnow() - timedelta(days=UNUSED_CLIENT_DAYS + 1)
    with services.store.writer() as cur:
        cur.execute(
            "UPDATE oauth_clients SET created_at = ? WHERE client_id IN (?, ?)",
            [old, unused.client_id, used.client_id],
        )
    RawClient.registered(http, address=new_address())  # any registration prunes
    assert services.oauth_store.client(unused.client_id) is None
    assert services.oauth_store.client(used.client_id) is not None
    assert services.oauth_store.client(recent.client_id) is not None
