"""``/token`` and ``/revoke`` as RFC 6749 (sections 2.3.1, 4.1.3, 5.2) and RFC 7009 have
them, for clients other than the MCP SDK's:

- a confidential client may name itself in its ``Authorization: Basic`` header only
  (``client_id`` goes in the form only when the client does not authenticate); authlib's
  OAuth client, a real one, does exactly that;
- a refused grant (a wrong PKCE verifier, a spent or unknown code or refresh token) is
  ``400 invalid_grant``; ``401`` is ``invalid_client`` only, with a ``WWW-Authenticate:
  Basic`` challenge when the client authenticated with that header.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.oauth_harness import (
    OAuthWorld,
    RawClient,
    consent,
    mcp_post,
    oauth_world,
    pkce,
    signed_in_browser,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthWorld]:
    with oauth_world(tmp_path_factory.mktemp("oauth-basic")) as made:
        yield made


@pytest.fixture
def http(world: OAuthWorld) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.live.base_url, timeout=30) as client:
        yield client


def test_a_basic_client_without_client_id_in_the_form_signs_in_refreshes_and_revokes(
    world: OAuthWorld, http: httpx.Client
) -> None:
    client = RawClient.registered(http, token_endpoint_auth_method="client_secret_basic")
    assert client.client_secret
    sent: list[httpx.Request] = []
    base = world.live.base_url
    authlib_client = OAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=client.redirect_uri,
        event_hooks={"request": [sent.append]},
    )
    _, pat = world.analyst()
    verifier, challenge = pkce()
    with signed_in_browser(base, pat) as browser, authlib_client:
        code = consent(browser, client.authorize_url(challenge))["code"]
        tokens = authlib_client.fetch_token(
            f"{base}/token", code=code, code_verifier=verifier, resource=client.resource
        )
        assert b"client_id" not in (sent[-1].content or b"")  # the header alone names it
        assert sent[-1].headers["authorization"].startswith("Basic ")
        assert mcp_post(http, tokens["access_token"]).status_code == 200

        renewed = authlib_client.refresh_token(
            f"{base}/token", refresh_token=tokens["refresh_token"]
        )
        assert renewed["access_token"] != tokens["access_token"]
        assert mcp_post(http, renewed["access_token"]).status_code == 200

        revoked = authlib_client.revoke_token(f"{base}/revoke", renewed["access_token"])
        assert revoked.status_code == 200, revoked.text
        assert b"client_id" not in (sent[-1].content or b"")
        assert mcp_post(http, renewed["access_token"]).status_code == 401


def test_a_client_naming_no_method_may_authenticate_with_basic(
    world: OAuthWorld, http: httpx.Client
) -> None:
    """A client registered without a method is given ``client_secret_post``; an OAuth
    library following RFC 7591's default (authlib's) sends its secret with HTTP Basic,
    which RFC 6749 section 2.3.1 says the server MUST take from any client with a secret."""
    client = RawClient.registered(http, token_endpoint_auth_method=None)
    assert client.client_secret
    base = world.live.base_url
    authlib_client = OAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        redirect_uri=client.redirect_uri,  # no token_endpoint_auth_method: Basic
    )
    _, pat = world.analyst()
    verifier, challenge = pkce()
    with signed_in_browser(base, pat) as browser, authlib_client:
        code = consent(browser, client.authorize_url(challenge))["code"]
        tokens = authlib_client.fetch_token(
            f"{base}/token", code=code, code_verifier=verifier, resource=client.resource
        )
        assert mcp_post(http, tokens["access_token"]).status_code == 200
    both = http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
              "client_id": client.client_id, "client_secret": client.client_secret},
        auth=httpx.BasicAuth(client.client_id, client.client_secret),
    )  # fmt: skip
    assert both.status_code == 401 and "sent twice" in both.json()["error_description"]


def test_a_wrong_secret_in_the_basic_header_alone_is_invalid_client(http: httpx.Client) -> None:
    client = RawClient.registered(http, token_endpoint_auth_method="client_secret_basic")
    form = {"grant_type": "refresh_token", "refresh_token": "agnesrt_not-a-token"}
    for auth in (httpx.BasicAuth(client.client_id, "wrong"), httpx.BasicAuth("nobody", "x")):
        for path in ("/token", "/revoke"):
            data = form if path == "/token" else {"token": "agnesat_not-a-token"}
            refused = http.post(path, data=data, auth=auth)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"] == "invalid_client"
            assert refused.headers["www-authenticate"].startswith("Basic ")
    garbled = http.post("/token", data=form, headers={"Authorization": "Basic %%%"})
    assert garbled.status_code == 401 and garbled.json()["error"] == "invalid_client"


def test_a_refused_grant_is_400_invalid_grant(world: OAuthWorld, http: httpx.Client) -> None:
    client = RawClient.registered(http)
    _, pat = world.analyst()
    with signed_in_browser(world.live.base_url, pat) as browser:
        verifier, challenge = pkce()
        code = consent(browser, client.authorize_url(challenge))["code"]
        refusals = [client.exchange(code, pkce()[0])]  # a wrong verifier
        tokens = client.exchange(code, verifier).json()
        refusals.append(client.exchange(code, verifier))  # the code again
        refusals.append(client.refresh(tokens["refresh_token"]))  # revoked by the replay
        refusals.append(client.refresh("agnesrt_not-a-token"))
    for refused in refusals:
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_grant"
        assert refused.headers["cache-control"] == "no-store"
        assert "www-authenticate" not in refused.headers
    public = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    assert "www-authenticate" not in public.headers  # no Authorization header was sent


def test_a_refusal_before_the_oauth_handler_is_in_oauth_s_error_shape(
    world: OAuthWorld, http: httpx.Client
) -> None:
    """A body over the size limit, a form of too many fields, a disallowed Host or a wrong
    method were refused on /token, /register and /revoke in the API's shape (``error`` an
    object), which OAuth clients cannot read: RFC 6749 section 5.2's shape, no-store."""
    limit = world.live.services.settings.max_request_bytes
    form = {"content-type": "application/x-www-form-urlencoded"}
    many = "&".join(f"f{i}=1" for i in range(3000))
    answers = {
        "oversized token": http.post("/token", content=b"a" * (int(limit) + 1), headers=form),
        "oversized register": http.post(
            "/register",
            content=b"a" * (int(limit) + 1),
            headers={"content-type": "application/json"},
        ),
        "many fields": http.post("/token", content=many, headers=form),
        "many fields revoke": http.post("/revoke", content=many, headers=form),
        "host": http.post("/token", data={"grant_type": "x"}, headers={"host": "evil.example.com"}),
        "method": http.get("/token"),
    }
    for what, answer in answers.items():
        assert answer.status_code in (400, 405, 413, 421), (what, answer.text)
        body = answer.json()
        assert body["error"] == "invalid_request", (what, body)
        assert isinstance(body["error_description"], str) and body["error_description"], what
        assert answer.headers["cache-control"] == "no-store", what
    assert "larger than" in answers["oversized token"].json()["error_description"]
    assert "Allow" in answers["method"].headers or "allow" in answers["method"].headers
    # the rest of the server keeps the API's shape
    other = http.post("/api/query", content=b"a" * (int(limit) + 1), headers=form)
    assert other.status_code == 413 and other.json()["error"]["code"] == "payload_too_large"
