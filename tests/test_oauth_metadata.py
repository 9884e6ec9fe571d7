"""MCP clients learn why they are refused: RFC 9728 metadata and an RFC 6750 challenge on 401."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import LiveServer, add_user, running_server
from tests.mcp_raw import INITIALIZE, MCP_HEADERS

METADATA_PATHS = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
)


def challenge(header: str) -> dict[str, str]:
    """The auth-params of a ``Bearer`` challenge (RFC 6750 section 3)."""
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer", header
    found = dict(re.findall(r'([a-z_]+)="([^"]*)"', params))
    assert ", ".join(f'{k}="{v}"' for k, v in found.items()) == params.strip(), header
    return found


def test_protected_resource_metadata_follows_rfc_9728(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url, timeout=10) as anonymous:
        for path in METADATA_PATHS:
            response = anonymous.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["content-type"] == "application/json"
            assert "max-age=" in response.headers["cache-control"]
            metadata = response.json()
            assert metadata["resource"] == f"{live_server.base_url}/mcp"  # REQUIRED
            assert metadata["bearer_methods_supported"] == ["header"]
            assert metadata["scopes_supported"] == ["data"]  # all an MCP client can be granted
            assert metadata["resource_name"] == live_server.services.settings.instance_name
            # Agnes is its own authorization server, at the URL the client used
            assert metadata["authorization_servers"] == [live_server.base_url]
            docs = anonymous.get(metadata["resource_documentation"])
            assert docs.status_code == 200
            assert not set(metadata) - {
                "resource",
                "bearer_methods_supported",
                "scopes_supported",
                "resource_name",
                "resource_documentation",
                "authorization_servers",
            }
        assert anonymous.get("/.well-known/oauth-protected-resource/other").status_code == 404


def test_metadata_is_behind_the_host_and_origin_guard(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url, timeout=10) as client:
        for path in METADATA_PATHS:
            assert client.get(path, headers={"Host": "attacker.example.com"}).status_code == 421
            cross_site = client.get(path, headers={"Origin": "https://attacker.example.com"})
            assert cross_site.status_code == 403


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, None),  # no credentials: no error code (RFC 6750 section 3.1)
        ("Basic dXNlcjpwYXNz", None),  # another scheme: the same
        ("Bearer", "invalid_request"),  # the scheme without a token
        ("Bearer garbage", "invalid_token"),
        ("Bearer agnes_abcdefghij_" + "x" * 43, "invalid_token"),
    ],
)
def test_a_401_from_mcp_points_at_the_metadata(
    live_server: LiveServer, authorization: str | None, error: str | None
) -> None:
    headers = dict(MCP_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    with httpx.Client(base_url=live_server.base_url, timeout=10) as client:
        refused = client.post("/mcp", json=INITIALIZE, headers=headers)
        assert refused.status_code == 401
        body = refused.json()["error"]  # the API's error shape, as before
        assert body["code"] and body["message"] and "agnes admin token create" in body["hint"]
        params = challenge(refused.headers["www-authenticate"])
        assert params["resource_metadata"] == (
            f"{live_server.base_url}/.well-known/oauth-protected-resource/mcp"
        )
        if error is None:
            assert set(params) == {"resource_metadata"}
        else:
            assert params["error"] == error
            assert params["error_description"] == body["message"]
        metadata = client.get(params["resource_metadata"])
        assert metadata.status_code == 200
        assert metadata.json()["resource"] == f"{live_server.base_url}/mcp"


def test_a_revoked_token_is_described(live_server: LiveServer) -> None:
    services = live_server.services
    info, raw = services.tokens.create(add_user(services).id, "laptop")
    services.tokens.revoke(info.id)
    with httpx.Client(base_url=live_server.base_url, timeout=10) as client:
        refused = client.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {raw}"}
        )
    params = challenge(refused.headers["www-authenticate"])
    assert params["error"] == "invalid_token" and "was revoked" in params["error_description"]
    assert refused.json()["error"]["code"] == "token_revoked"


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("public")
    with running_server(root / "data", public_url="https://agnes.example.com/") as server:
        yield server


def test_public_url_names_the_resource(public_server: LiveServer) -> None:
    with httpx.Client(base_url=public_server.base_url, timeout=10) as client:
        metadata = client.get("/.well-known/oauth-protected-resource/mcp").json()
        assert metadata["resource"] == "https://agnes.example.com/mcp"
        assert metadata["resource_documentation"].startswith("https://agnes.example.com/")
        refused = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert challenge(refused.headers["www-authenticate"])["resource_metadata"] == (
        "https://agnes.example.com/.well-known/oauth-protected-resource/mcp"
    )


def leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in leaves(inner)]
    return [group]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_sdk_client_with_a_bad_token(live_server: LiveServer) -> None:
    """What the official ``mcp`` client shows for a refused token, and where the reason is.

    The SDK turns a non-2xx answer into a JSON-RPC error only when the body *is* a JSON-RPC
    error; the API's error shape (``{"error": {"code": "token_invalid", ...}}``, a string
    code) is not one, so the SDK reports its own fixed text. The server's reason reaches the
    client's HTTP layer in ``WWW-Authenticate`` (and the body), which an application can
    read with an httpx event hook, as done here.
    """
    responses: list[httpx2.Response] = []

    async def keep(response: httpx2.Response) -> None:
        responses.append(response)

    headers = {"Authorization": "Bearer agnes_abcdefghij_" + "x" * 43}
    with pytest.raises(BaseExceptionGroup) as caught:
        async with (
            httpx2.AsyncClient(
                headers=headers, timeout=30, event_hooks={"response": [keep]}
            ) as http,
            streamable_http_client(f"{live_server.base_url}/mcp", http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
    errors = [leaf for leaf in leaves(caught.value) if isinstance(leaf, MCPError)]
    assert errors, caught.value
    assert str(errors[0]) == "Server returned an error response"  # all the SDK surfaces
    refused = [r for r in responses if r.status_code == 401]
    assert refused, [r.status_code for r in responses]
    params = challenge(refused[0].headers["www-authenticate"])
    assert params["error"] == "invalid_token"
    assert params["error_description"] == "The token is not valid."


# --- the authorization server's own metadata (RFC 8414) ------------------------------------

AS_METADATA_PATHS = (
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/mcp",  # path-suffixed for the /mcp issuer lookup
)


def authorization_server_metadata(client: httpx.Client, base: str) -> dict[str, object]:
    """The AS metadata the protected resource points to, checked against RFC 8414."""
    resource = client.get("/.well-known/oauth-protected-resource/mcp").json()
    issuer = resource["authorization_servers"][0]
    documents = []
    for path in AS_METADATA_PATHS:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"] == "application/json"
        assert "max-age=" in response.headers["cache-control"]
        documents.append(response.json())
    assert documents[0] == documents[1]
    metadata: dict[str, object] = documents[0]
    # the issuer is exactly the string the resource metadata names (clients compare them)
    assert metadata["issuer"] == issuer == base
    return metadata


def test_authorization_server_metadata_follows_rfc_8414(live_server: LiveServer) -> None:
    base = live_server.base_url
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        metadata = authorization_server_metadata(anonymous, base)
    assert metadata["authorization_endpoint"] == f"{base}/authorize"
    assert metadata["token_endpoint"] == f"{base}/token"
    assert metadata["registration_endpoint"] == f"{base}/register"
    assert metadata["revocation_endpoint"] == f"{base}/revoke"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]  # no "plain"
    assert metadata["scopes_supported"] == ["data"]
    assert metadata["authorization_response_iss_parameter_supported"] is True  # RFC 9207
    methods = ["none", "client_secret_post", "client_secret_basic"]
    assert metadata["token_endpoint_auth_methods_supported"] == methods
    assert metadata["revocation_endpoint_auth_methods_supported"] == methods


def test_the_issuer_is_the_url_the_client_used(live_server: LiveServer) -> None:
    port = live_server.base_url.rsplit(":", 1)[1]
    with httpx.Client(
        base_url=live_server.base_url, headers={"Host": f"localhost:{port}"}, timeout=10
    ) as client:
        metadata = authorization_server_metadata(client, f"http://localhost:{port}")
    assert metadata["token_endpoint"] == f"http://localhost:{port}/token"


def test_authorization_server_metadata_is_behind_the_host_guard(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url, timeout=10) as client:
        for path in AS_METADATA_PATHS:
            assert client.get(path, headers={"Host": "attacker.example.com"}).status_code == 421


def test_public_url_names_the_issuer(public_server: LiveServer) -> None:
    base = "https://agnes.example.com"
    with httpx.Client(base_url=public_server.base_url, timeout=10) as client:
        metadata = authorization_server_metadata(client, base)
    assert metadata["authorization_endpoint"] == f"{base}/authorize"
    assert metadata["token_endpoint"] == f"{base}/token"


@pytest.fixture(scope="module")
def no_oauth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("no-oauth")
    with running_server(root / "data", auth={"oauth": {"enabled": False}}) as server:
        yield server


def test_with_oauth_off_there_is_no_authorization_server(no_oauth_server: LiveServer) -> None:
    base = no_oauth_server.base_url
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        metadata = anonymous.get("/.well-known/oauth-protected-resource/mcp")
        assert metadata.status_code == 200
        assert "authorization_servers" not in metadata.json()
        assert metadata.json()["resource"] == f"{base}/mcp"
        for path in AS_METADATA_PATHS:
            assert anonymous.get(path).status_code == 404, path
        assert anonymous.get("/authorize", params={"client_id": "x"}).status_code == 404
        assert anonymous.post("/register", json={"redirect_uris": []}).status_code == 404
        assert anonymous.post("/token", data={"grant_type": "refresh_token"}).status_code == 404
        assert anonymous.post("/revoke", data={"token": "x"}).status_code == 404
        assert anonymous.get("/oauth/consent", params={"request": "x"}).status_code == 404
        refused = anonymous.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert refused.status_code == 401
    hint = refused.json()["error"]["hint"]
    assert "agnes admin token create" in hint
    assert "Sign in from your MCP client" not in hint and "does not offer OAuth" in hint
    params = challenge(refused.headers["www-authenticate"])
    assert params["resource_metadata"] == f"{base}/.well-known/oauth-protected-resource/mcp"
    # an OAuth-shaped token is no special kind then: refused like any unknown token
    services = no_oauth_server.services
    assert services.bearer.kind_of("agnesat_" + "x" * 43) == "personal"
