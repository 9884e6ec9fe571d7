"""The REST API over real HTTP (uvicorn on a free port): auth, RBAC, error shape, bad input."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import httpx
import pytest

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from tests.conftest import LiveServer, add_user, token_for, unique_email

_names = itertools.count()


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in response.text
    assert "hint" in error
    return error


@pytest.fixture
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client(live_server.admin_token) as client:
        yield client


@pytest.fixture
def analyst(live_server: LiveServer) -> Iterator[httpx.Client]:
    user = add_user(live_server.services)
    with live_server.client(token_for(live_server.services, user)) as client:
        yield client


def test_healthz_needs_no_token(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_head_is_answered_wherever_get_is(live_server: LiveServer, admin: httpx.Client) -> None:
    """``curl -I`` or a load balancer's ``HEAD`` probe got 405 from routes ``GET`` serves.
    A ``HEAD`` answer has the ``GET``'s status and headers and no body, behind the same
    token check."""
    with live_server.client() as client:
        got, head = client.get("/healthz"), client.head("/healthz")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(got.content))
        assert head.headers["content-type"] == got.headers["content-type"]
        refused = client.head("/api/whoami")
        assert refused.status_code == 401 and refused.content == b""
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert client.head("/api/docs").status_code == 200
        assert client.head("/api/no-such-route").status_code == 404
    mine = admin.head("/api/whoami")
    assert mine.status_code == 200 and mine.content == b""
    assert mine.headers["content-length"] == str(len(admin.get("/api/whoami").content))
    post_only = admin.head("/api/query")
    assert post_only.status_code == 405 and "POST" in post_only.headers["allow"]
    # /mcp keeps its own methods: a GET there would open an event stream
    assert admin.head("/mcp").status_code == 405


def test_a_browser_asking_for_an_icon_gets_no_error(live_server: LiveServer) -> None:
    """Any JSON answer opened in a browser (an /authorize error) made it ask for
    /favicon.ico: a 404 on its console. No icon is said with 204, and nothing else."""
    with live_server.client() as client:
        response = client.get("/favicon.ico")
    assert response.status_code == 204 and response.content == b""
    assert "max-age" in response.headers["cache-control"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "unauthenticated"),
        ({"Authorization": "Bearer"}, "unauthenticated"),
        ({"Authorization": "Bearer not-a-token"}, "token_invalid"),
        ({"Authorization": "Bearer agnes_abcdefghij_" + "x" * 43}, "token_invalid"),
    ],
)
def test_missing_or_wrong_token_is_a_clear_401(
    live_server: LiveServer, headers: dict, code: str
) -> None:
    with live_server.client() as client:
        response = client.get("/api/whoami", headers=headers)
    assert_error(response, 401, code)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_whoami(live_server: LiveServer, admin: httpx.Client) -> None:
    me = admin.get("/api/whoami").json()
    assert me["is_admin"] and {"Admin", "Everyone"} <= set(me["groups"])
    assert me["scopes"] == ["admin", "data"]


def test_non_admin_gets_403_on_admin_routes(analyst: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/groups"),
        ("GET", "/api/admin/grants"),
        ("DELETE", "/api/admin/grants/grt_x"),
        ("GET", "/api/admin/resource-types"),
        ("GET", "/api/admin/audit"),
        ("GET", "/api/admin/usage"),
    ]:
        response = analyst.request(method, path, json={"name": "x"} if method == "POST" else None)
        assert_error(response, 403, "admin_required")


def test_admin_token_without_admin_scope_is_refused(live_server: LiveServer) -> None:
    services = live_server.services
    user = add_user(services, (ADMIN_GROUP_ID,))
    with live_server.client(token_for(services, user, admin=False)) as client:
        error = assert_error(client.get("/api/admin/users"), 403, "admin_required")
    assert "scope" in error["message"]


def test_an_admin_scoped_token_is_only_made_for_an_admin(
    live_server: LiveServer, admin: httpx.Client
) -> None:
    """An admin could mint a token with the 'admin' scope for a user outside the Admin
    group: dormant, it became an admin token the day they joined Admin, unnoticed."""
    services = live_server.services
    user = add_user(services)
    body = {"name": "ops", "user": user.email, "scopes": ["admin", "data"]}
    error = assert_error(admin.post("/api/tokens", json=body), 422, "invalid_request")
    assert error["details"]["fields"][0]["field"] == "scopes"
    assert "not in the Admin group" in error["message"]
    assert services.token_store.all(user_id=user.id) == []
    data_only = admin.post("/api/tokens", json={**body, "scopes": ["data"]})
    assert data_only.status_code == 201, data_only.text
    services.groups.add_member(ADMIN_GROUP_ID, user.id)
    made = admin.post("/api/tokens", json=body)
    assert made.status_code == 201 and made.json()["info"]["scopes"] == ["admin", "data"]


def test_user_lifecycle(live_server: LiveServer, admin: httpx.Client) -> None:
    email = unique_email("life")
    created = admin.post(
        "/api/admin/users", json={"email": email, "name": "Life", "groups": ["Admin"]}
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["groups"] == ["Admin", "Everyone"]
    assert admin.get(f"/api/admin/users/{email}").json()["id"] == user["id"]
    assert any(u["email"] == email for u in admin.get("/api/admin/users").json()["users"])
    assert_error(admin.post("/api/admin/users", json={"email": email}), 409, "user_exists")

    token = admin.post("/api/tokens", json={"name": "t", "user": email}).json()["token"]
    with live_server.client(token) as client:
        assert client.get("/api/whoami").status_code == 200
        assert admin.post(f"/api/admin/users/{email}/deactivate").json()["active"] is False
        assert_error(client.get("/api/whoami"), 401, "user_inactive")
        # a token for a deactivated user could never work: refused, saying how to go on
        refused = assert_error(
            admin.post("/api/tokens", json={"name": "t2", "user": email}), 422, "invalid_request"
        )
        assert "deactivated" in refused["message"] and "user activate" in refused["hint"]
        assert admin.post(f"/api/admin/users/{user['id']}/activate").json()["active"] is True
        assert client.get("/api/whoami").status_code == 200


def test_adding_a_user_to_a_missing_group_creates_nothing(admin: httpx.Client) -> None:
    email = unique_email("ghost")
    assert_error(
        admin.post("/api/admin/users", json={"email": email, "groups": ["Nope"]}),
        404,
        "group_not_found",
    )
    assert_error(admin.get(f"/api/admin/users/{email}"), 404, "user_not_found")


def test_tokens_self_service_and_limits(live_server: LiveServer, admin: httpx.Client) -> None:
    services = live_server.services
    me, other = add_user(services), add_user(services)
    other_token_id = services.tokens.create(other.id, "other")[0].id
    with live_server.client(token_for(services, me)) as client:
        created = client.post("/api/tokens", json={"name": "notebook", "expires_in_days": 30})
        assert created.status_code == 201
        assert created.headers["cache-control"] == "no-store"  # it holds the raw token
        body = created.json()
        assert body["info"]["user_id"] == me.id and body["info"]["expires_at"]
        mine = client.get("/api/tokens").json()["tokens"]
        assert {t["user_id"] for t in mine} == {me.id} and "token_hash" not in mine[0]
        assert_error(
            client.post("/api/tokens", json={"name": "x", "user": other.email}),
            403,
            "admin_required",
        )
        assert_error(
            client.post("/api/tokens", json={"name": "x", "scopes": ["admin"]}),
            403,
            "admin_required",
        )
        assert_error(client.get("/api/tokens", params={"all": "true"}), 403, "admin_required")
        assert_error(client.delete(f"/api/tokens/{other_token_id}"), 404, "token_not_found")
        revoked = client.delete(f"/api/tokens/{body['info']['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        with live_server.client(body["token"]) as revoked_client:
            assert_error(revoked_client.get("/api/whoami"), 401, "token_revoked")
    assert admin.delete(f"/api/tokens/{other_token_id}").json()["revoked_at"]
    listed = admin.get("/api/tokens", params={"user": other.email}).json()["tokens"]
    assert [t["id"] for t in listed] == [other_token_id]


def test_leaving_admin_ends_admin_tokens_for_good(
    live_server: LiveServer, admin: httpx.Client
) -> None:
    """An admin-scoped token of a user removed from Admin lay dormant and came back to
    life, unnoticed, the day they were made an admin again: leaving Admin revokes it
    (with its web sessions), and the audit entry names it; data-only tokens stay."""
    services = live_server.services
    user = add_user(services, (ADMIN_GROUP_ID,))
    admin_token = token_for(services, user, admin=True)
    data_token = token_for(services, user)
    ops_id = services.tokens.authenticate(admin_token, record_use=False).token_id
    with live_server.client(admin_token) as ops:
        assert ops.get("/api/admin/users").status_code == 200
    left = admin.delete(f"/api/admin/groups/Admin/members/{user.email}")
    assert left.status_code == 200, left.text
    admin.post("/api/admin/groups/Admin/members", json={"user": user.email}).raise_for_status()
    with live_server.client(admin_token) as ops:
        assert_error(ops.get("/api/admin/users"), 401, "token_revoked")
    with live_server.client(data_token) as data:
        assert data.get("/api/whoami").status_code == 200
    services.write_behind.flush()
    entry = next(
        r
        for r in services.audit_log.recent(limit=50)
        if r.action == "group.remove_member" and r.params.get("user") == user.id
    )
    assert entry.params["revoked_tokens"] == [ops_id]


def test_groups_and_members(live_server: LiveServer, admin: httpx.Client) -> None:
    name = f"Team {next(_names)}"
    group = admin.post("/api/admin/groups", json={"name": name, "description": "d"}).json()
    assert_error(admin.post("/api/admin/groups", json={"name": name.upper()}), 409, "group_exists")
    user = add_user(live_server.services)
    members = admin.post(f"/api/admin/groups/{name}/members", json={"user": user.email}).json()
    assert [m["email"] for m in members["members"]] == [user.email]
    assert members["group"]["member_count"] == 1
    assert (
        admin.get(f"/api/admin/groups/{group['id']}/members").json()["members"][0]["source"]
        == "admin"
    )
    left = admin.delete(f"/api/admin/groups/{name}/members/{user.email}").json()
    assert left["members"] == []
    assert_error(
        admin.delete(f"/api/admin/groups/{name}/members/{user.email}"), 404, "membership_not_found"
    )
    assert admin.delete(f"/api/admin/groups/{name}").json() == {"deleted": group["id"]}
    assert_error(admin.delete("/api/admin/groups/Admin"), 409, "system_group_immutable")
    assert_error(admin.delete("/api/admin/groups/Nope"), 404, "group_not_found")


def test_grants(live_server: LiveServer, admin: httpx.Client) -> None:
    from agnes_sync.table_spec import TableSpec

    table_id = f"t_{next(_names)}"
    live_server.services.registry.add(TableSpec(id=table_id, source_type="files"))
    group = f"Grantees {next(_names)}"
    admin.post("/api/admin/groups", json={"name": group})
    grant = admin.post(
        "/api/admin/grants",
        json={"group": group, "resource_type": "table", "resource_id": table_id},
    )
    assert grant.status_code == 201 and grant.json()["group_name"] == group
    again = admin.post(
        "/api/admin/grants",
        json={"group": group, "resource_type": "table", "resource_id": table_id},
    )
    assert_error(again, 409, "grant_exists")
    error = assert_error(
        admin.post(
            "/api/admin/grants",
            json={"group": group, "resource_type": "tabel", "resource_id": table_id},
        ),
        422,
        "unknown_resource_type",
    )
    assert "Did you mean 'table'" in error["hint"]
    assert_error(
        admin.post(
            "/api/admin/grants",
            json={"group": group, "resource_type": "table", "resource_id": "nope"},
        ),
        404,
        "resource_not_found",
    )
    listed = admin.get("/api/admin/grants", params={"group": group}).json()["grants"]
    assert [g["resource_id"] for g in listed] == [table_id]
    assert admin.delete(f"/api/admin/grants/{grant.json()['id']}").status_code == 200
    assert admin.get("/api/admin/grants", params={"group": group}).json()["grants"] == []
    kinds = {k["type"] for k in admin.get("/api/admin/resource-types").json()["resource_types"]}
    assert {"table", "metric", "marketplace_plugin"} <= kinds


def test_malformed_json_is_a_400_with_position(admin: httpx.Client) -> None:
    response = admin.post(
        "/api/admin/groups", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    error = assert_error(response, 400, "malformed_json")
    assert "position" in error["message"]


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"name": "x", "colour": "red"}, "colour", "unknown field"),
        ({}, "name", "field required"),
        ({"name": ["not", "a", "string"]}, "name", "string"),
    ],
)
def test_invalid_bodies_name_the_field(
    admin: httpx.Client, body: dict, field: str, problem: str
) -> None:
    error = assert_error(admin.post("/api/admin/groups", json=body), 422, "invalid_request")
    assert any(f["field"] == field and problem in f["problem"] for f in error["details"]["fields"])
    assert field in error["message"]


def test_oversized_bodies_are_refused_before_parsing(
    live_server: LiveServer, admin: httpx.Client
) -> None:
    limit = int(live_server.services.settings.max_request_bytes)
    big = b'{"name": "' + b"x" * limit + b'"}'
    assert_error(
        admin.post("/api/admin/groups", content=big, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"name": "'
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    response = admin.post(
        "/api/admin/groups", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    assert admin.get("/api/whoami").status_code == 200  # the server is fine afterwards


def test_host_and_origin_guard(live_server: LiveServer, admin: httpx.Client) -> None:
    assert_error(
        admin.get("/api/whoami", headers={"Host": "attacker.example.com"}), 421, "host_not_allowed"
    )
    for odd in ("127.0.0.1:1@attacker.example.com", "127.0.0.1:x", "[::1]:80x", "127.0.0.1/x"):
        # read as "127.0.0.1" before: a Host that is not a host and port is no host of ours
        assert_error(admin.get("/api/whoami", headers={"Host": odd}), 421, "host_not_allowed")
    assert_error(
        admin.get("/healthz", headers={"Host": "attacker.example.com"}), 421, "host_not_allowed"
    )
    assert_error(
        admin.get("/api/whoami", headers={"Origin": "https://attacker.example.com"}),
        403,
        "origin_not_allowed",
    )
    assert_error(admin.get("/api/whoami", headers={"Origin": "null"}), 403, "origin_not_allowed")
    same_origin = admin.get("/api/whoami", headers={"Origin": live_server.base_url})
    assert same_origin.status_code == 200
    assert admin.get("/api/whoami", headers={"Host": "localhost"}).status_code == 200


@pytest.mark.parametrize("path", ["/api/whoami", "/mcp/", "/marketplace.git/info/refs"])
def test_a_header_sent_twice_is_refused(
    live_server: LiveServer, admin: httpx.Client, path: str
) -> None:
    """Two Authorization (or Host, or Origin) headers: this server read the first, a proxy
    in front of it may read the last; refused rather than guessed."""
    token = admin.headers["authorization"]
    twice = [
        [("Authorization", "Bearer agnes_not_a_real_token"), ("Authorization", token)],
        [("Authorization", token), ("Authorization", token)],
        [("Authorization", token), ("Origin", live_server.base_url), ("Origin", "null")],
    ]
    for headers in twice:
        refused = httpx.get(f"{live_server.base_url}{path}", headers=headers, timeout=30)
        if path == "/mcp/":  # JSON-RPC there: the API's error object is its data
            assert refused.status_code == 400 and refused.json()["error"]["code"] == -32600
            refused = httpx.Response(400, json={"error": refused.json()["error"]["data"]})
        said = assert_error(refused, 400, "header_repeated")
        assert said["details"]["header"] in ("Authorization", "Origin")
    once = httpx.get(f"{live_server.base_url}/api/whoami", headers=[("Authorization", token)])
    assert once.status_code == 200


def test_unknown_route_and_method(admin: httpx.Client) -> None:
    assert_error(admin.get("/api/nothing-here"), 404, "route_not_found")
    refused = admin.put("/api/whoami")
    assert_error(refused, 405, "method_not_allowed")
    assert "GET" in refused.headers["allow"]  # RFC 9110: a 405 says what is allowed
    trace = admin.request("TRACE", "/api/whoami")
    assert trace.status_code == 405 and "GET" in trace.headers["allow"]
    bad = admin.post(
        "/api/query", content=b'{"sql": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    said = assert_error(bad, 400, "malformed_json")  # it guessed "too deeply nested?"
    assert "not UTF-8" in said["message"]


def test_unexpected_errors_do_not_leak(
    live_server: LiveServer, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode() -> None:
        raise RuntimeError("secret-internal-detail /srv/agnes/state")

    monkeypatch.setattr(live_server.services.groups, "all", explode)
    response = admin.get("/api/admin/groups")
    error = assert_error(response, 500, "internal_error")
    assert "incident" in error["message"]
    assert "secret-internal-detail" not in response.text and "/srv/agnes" not in response.text


def test_admin_actions_are_audited_with_client_ip(
    live_server: LiveServer, admin: httpx.Client
) -> None:
    name = f"Audited {next(_names)}"
    group_id = admin.post("/api/admin/groups", json={"name": name}).json()["id"]
    live_server.services.write_behind.flush()
    rows = [r for r in live_server.services.audit_log.recent(limit=50) if r.resource == group_id]
    assert [(r.action, r.result, r.client_ip) for r in rows] == [
        ("group.create", "ok", "127.0.0.1")
    ]
    assert rows[0].params == {"name": name} and rows[0].user_id


def test_openapi_describes_the_api(live_server: LiveServer) -> None:
    with live_server.client() as client:
        spec = client.get("/api/openapi.json").json()
    for path in (
        "/api/whoami",
        "/api/tokens",
        "/api/admin/users",
        "/api/admin/groups",
        "/api/admin/grants",
    ):
        assert path in spec["paths"]
    # every operation declares the statuses an error may come with, and their one body
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in ("401", "403", "404", "422"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == error_ref, (method, path, status)
    # the bounds the service enforces are in the schema a generator or a client reads
    schemas = spec["components"]["schemas"]
    assert schemas["StoreBody"]["properties"]["name"]["pattern"] == "^[a-z][a-z0-9_]{0,62}$"
    hybrid = schemas["HybridRequest"]["properties"]["register_remote"]
    assert (hybrid["minProperties"], hybrid["maxProperties"]) == (1, 8)
    from agnes_mcp.api.schemas import ErrorBody

    with live_server.client(live_server.admin_token) as client:
        for refused in (client.get("/api/nothing"), client.post("/api/query", json={"x": 1})):
            ErrorBody.model_validate(refused.json())  # what is declared is what comes
    assert live_server.base_url  # docs page is served too
    with live_server.client() as client:
        assert client.get("/api/docs").status_code == 200
        # The admin app needs a signed-in admin: anyone else is sent to the sign-in page.
        admin = client.get("/admin", follow_redirects=False)
        assert admin.status_code == 303
        assert admin.headers["location"].startswith("/auth/login?next=")


def test_concurrent_admin_writes_never_500_and_leave_no_orphans(live_server: LiveServer) -> None:
    """Admins racing on the same group: every answer is 2xx/404/409, the store stays whole."""
    from concurrent.futures import ThreadPoolExecutor

    from agnes_sync.table_spec import TableSpec

    table_id = f"race_{next(_names)}"
    live_server.services.registry.add(TableSpec(id=table_id, source_type="files"))
    name = f"Race {next(_names)}"
    member = add_user(live_server.services)
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}

    def act(i: int) -> int:
        with httpx.Client(base_url=live_server.base_url, headers=headers, timeout=30) as c:
            kind = i % 4
            if kind == 0:
                r = c.post("/api/admin/groups", json={"name": name})
            elif kind == 1:
                r = c.delete(f"/api/admin/groups/{name}")
            elif kind == 2:
                r = c.post(f"/api/admin/groups/{name}/members", json={"user": member.email})
            else:
                body = {"group": name, "resource_type": "table", "resource_id": table_id}
                r = c.post("/api/admin/grants", json=body)
            return r.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(act, range(160)))
    assert all(s < 500 for s in statuses), sorted(set(statuses))
    assert {200, 201} & set(statuses)
    with live_server.services.store.cursor() as cur:
        orphans = cur.execute(
            "SELECT (SELECT count(*) FROM resource_grants "
            "        WHERE group_id NOT IN (SELECT id FROM user_groups)), "
            "       (SELECT count(*) FROM user_group_members "
            "        WHERE group_id NOT IN (SELECT id FROM user_groups))"
        ).fetchall()
    assert orphans == [(0, 0)]


def test_the_last_admin_cannot_be_locked_out(live_server: LiveServer, admin: httpx.Client) -> None:
    from agnes_mcp.store.users import active_admins

    services = live_server.services
    with services.store.cursor() as cur:
        admins = [
            r[0]
            for r in cur.execute(
                "SELECT u.email FROM users u JOIN user_group_members m ON m.user_id = u.id "
                "WHERE m.group_id = 'admin' AND u.active"
            ).fetchall()
        ]
    # Deactivate every admin but the bootstrap one, through the API, until one is left.
    me = admin.get("/api/whoami").json()["email"]
    for email in admins:
        if email != me:
            assert admin.post(f"/api/admin/users/{email}/deactivate").status_code == 200
    assert active_admins(services.store) == 1
    assert_error(admin.post(f"/api/admin/users/{me}/deactivate"), 409, "last_admin")
    error = assert_error(
        admin.delete(f"/api/admin/groups/Admin/members/{me}"), 404, "membership_not_found"
    )
    assert "admin" in error["message"]  # the bootstrap admin's membership is a system seed row
    for email in admins:
        if email != me:
            admin.post(f"/api/admin/users/{email}/activate")


def test_non_admins_cannot_probe_which_users_exist(
    live_server: LiveServer, analyst: httpx.Client
) -> None:
    for who in ("admin@example.com", "nobody-at-all@example.com"):
        assert_error(analyst.get("/api/tokens", params={"user": who}), 403, "admin_required")
        assert_error(
            analyst.post("/api/tokens", json={"name": "x", "user": who}), 403, "admin_required"
        )


@pytest.mark.parametrize(
    "email",
    [
        "x@example.com\u0000",
        "\u202eadmin@example.com",
        "a/b@example.com",
        "a b@example.com",
        "ümlaut@example.com",
        "x@example",
        "@example.com",
    ],
)
def test_odd_email_addresses_are_refused(admin: httpx.Client, email: str) -> None:
    assert_error(admin.post("/api/admin/users", json={"email": email}), 422, "invalid_request")


@pytest.mark.parametrize("text", ["\x1b]0;pwned\x07", "a\u202eb", "nul\x00"])
def test_free_text_refuses_control_characters(admin: httpx.Client, text: str) -> None:
    error = assert_error(
        admin.post("/api/admin/users", json={"email": unique_email("ctl"), "name": text}),
        422,
        "invalid_request",
    )
    assert "control character" in error["message"]
    assert_error(
        admin.post("/api/admin/groups", json={"name": f"G{next(_names)}", "description": text}),
        422,
        "invalid_request",
    )


def test_forwarded_headers_cannot_fake_the_client_ip(live_server: LiveServer) -> None:
    services = live_server.services
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "ip")
    with live_server.client(raw) as client:
        client.get("/api/whoami", headers={"X-Forwarded-For": "203.0.113.66"})
    services.write_behind.flush()
    assert services.token_store.get(info.id).info.last_used_ip == "127.0.0.1"


def test_deeply_nested_json_is_malformed_not_a_crash(admin: httpx.Client) -> None:
    body = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = admin.post(
        "/api/admin/groups", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 413)
    assert response.json()["error"]["code"] in (
        "malformed_json",
        "invalid_request",
        "payload_too_large",
    )


def test_every_route_module_is_mounted(live_server: LiveServer, admin: httpx.Client) -> None:
    """A route module written but never included answered 404 for documented routes
    (``/api/admin/audit`` and ``/usage``): each module's every path is served."""
    import importlib
    import pkgutil

    import agnes_mcp.api.routes as package
    from agnes_mcp.api.app import create_app

    served = set(create_app(live_server.services).openapi()["paths"])
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if router is None:
            continue
        documented = {  # OpenAPI names a parameter without its convertor ({id:path})
            re.sub(r":\w+}", "}", r.path)
            for r in router.routes
            if getattr(r, "include_in_schema", False)
        }
        missing = documented - served
        assert not missing, f"{info.name}: {sorted(missing)} not mounted"
    audit = admin.get("/api/admin/audit", params={"page_size": 5})
    assert audit.status_code == 200 and audit.json()["page_size"] == 5, audit.text
    usage = admin.get("/api/admin/usage", params={"days": 3})
    assert usage.status_code == 200 and "bytes_per_user_day" in usage.json(), usage.text
