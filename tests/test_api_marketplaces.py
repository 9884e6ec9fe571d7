"""``/api/admin/marketplaces`` over real HTTP (uvicorn on a free port): who may call it,
registering (URL, slug, ref and token-variable rules; credentials never echoed), syncs
queued without waiting, plugins with the groups granted them, and removal taking the
plugins' grants with it. Plugins are seeded through the store: the git sync has tests of
its own."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.marketplaces import MarketplacePlugin
from tests.conftest import LiveServer, add_user, running_server, token_for
from tests.test_api_http import assert_error

BASE = "/api/admin/marketplaces"
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that accepts local repositories (marketplace.allow_local)."""
    data = tmp_path_factory.mktemp("marketplaces-api") / "data"
    with running_server(
        data, marketplace={"allow_local": True, "token_envs": ["PLUGINS_READ_TOKEN"]}
    ) as live:
        yield live


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(server.admin_token) as client:
        yield client


def new_slug() -> str:
    return f"mkt-{next(_names)}"


def add(admin: httpx.Client, slug: str, url: str, **fields: object) -> dict:
    response = admin.post(BASE, json={"slug": slug, "url": url, "sync": False, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def seed_plugins(services: Services, slug: str, *names: str) -> None:
    """Plugins as a good sync would record them."""
    plugins = [
        MarketplacePlugin(
            marketplace=slug,
            name=name,
            version="1.0.0",
            description=f"The {name} plugin",
            source_path=f"plugins/{name}",
            content_hash=f"{i:064x}",
            files=2,
            bytes=120,
            manifest={"name": name},
            entry={},
        )
        for i, name in enumerate(names)
    ]
    services.marketplace_store.record_success(slug, "c0ffee" * 6 + "abcd", "upstream", plugins)


def grant(admin: httpx.Client, group: str, resource_id: str) -> dict:
    body = {"group": group, "resource_type": "marketplace_plugin", "resource_id": resource_id}
    response = admin.post("/api/admin/grants", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def new_group(admin: httpx.Client) -> str:
    name = f"Plugin users {next(_names)}"
    assert admin.post("/api/admin/groups", json={"name": name}).status_code == 201
    return name


ROUTES = [
    ("GET", BASE),
    ("POST", BASE),
    ("POST", f"{BASE}/sync"),
    ("GET", f"{BASE}/plugins"),
    ("GET", f"{BASE}/any"),
    ("DELETE", f"{BASE}/any"),
    ("POST", f"{BASE}/any/sync"),
    ("GET", f"{BASE}/any/plugins"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_only_admins_may_call_it(server: LiveServer, method: str, path: str) -> None:
    body = {"slug": "x", "url": "https://git.example.com/x.git"} if method == "POST" else None
    with server.client() as anonymous:
        assert_error(anonymous.request(method, path, json=body), 401, "unauthenticated")
    analyst = token_for(server.services, add_user(server.services))
    with server.client(analyst) as client:
        assert_error(client.request(method, path, json=body), 403, "admin_required")
    assert "x" not in [m.slug for m in server.services.marketplaces.all()]


def test_added_marketplace_is_listed_with_its_token_variable_not_its_value(
    server: LiveServer, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    slug = new_slug()
    monkeypatch.setenv("PLUGINS_READ_TOKEN", "tok-sup3r-s3cret")
    added = add(
        admin,
        slug,
        "https://git.example.com/team/plugins.git",
        name="Data team",
        ref="v1.2.0",
        token_env="PLUGINS_READ_TOKEN",
    )
    assert (added["slug"], added["name"], added["ref"]) == (slug, "Data team", "v1.2.0")
    assert added["token_env"] == "PLUGINS_READ_TOKEN" and added["token_env_set"] is True
    assert added["state"] == "idle" and added["plugins"] == 0 and added["last_sync_at"] is None
    assert added["added_by"] == server.services.tokens.authenticate(server.admin_token).user_id

    listed = admin.get(BASE).json()["marketplaces"]
    assert [m["url"] for m in listed if m["slug"] == slug] == [
        "https://git.example.com/team/plugins.git"
    ]
    monkeypatch.delenv("PLUGINS_READ_TOKEN")
    one = admin.get(f"{BASE}/{slug}")
    assert one.status_code == 200 and one.json()["token_env_set"] is False
    assert "tok-sup3r-s3cret" not in one.text + admin.get(BASE).text

    server.services.write_behind.flush()
    (row,) = [r for r in server.services.audit_log.recent(limit=200) if r.resource == slug]
    assert row.action == "marketplace.add"
    assert row.params["token_env"] == "PLUGINS_READ_TOKEN"


def test_no_token_variable_means_no_token_state(admin: httpx.Client, tmp_path: Path) -> None:
    added = add(admin, new_slug(), str(tmp_path / "plugins.git"))
    assert added["token_env"] is None and added["token_env_set"] is None
    assert added["url"] == str(tmp_path / "plugins.git")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("slug", "Not A Slug!", "lowercase letters, digits and '-'"),
        ("slug", "plugins", "reserved"),
        ("url", "ssh://git@git.example.com/team/plugins.git", "not an https:// URL"),
        ("url", "git@git.example.com:team/plugins.git", "not an https:// URL"),
        ("ref", "main..evil", "not a branch, tag or full commit SHA"),
        ("ref", "-upload-pack=touch", "not a branch, tag or full commit SHA"),
        ("token_env", "MY-TOKEN", "NAME of an environment variable"),
        # a token typed as the git user name was stored and shown back to every admin
        ("username", "ghp_S3cretValue0123456789abcdefABCDEF0", "shaped like a token"),
        ("username", "github_pat_11AB2CD_S3cretValue", "shaped like a token"),
        ("username", "glpat-S3cretValue01234", "shaped like a token"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_why(
    admin: httpx.Client, field: str, value: str, reason: str
) -> None:
    body = {"slug": new_slug(), "url": "https://git.example.com/x.git", "sync": False}
    body[field] = value
    response = admin.post(BASE, json=body)
    error = assert_error(response, 422, response.json()["error"]["code"])
    assert error["code"] in ("invalid_request", "marketplace_url_refused")
    problems = {p["field"]: p["problem"] for p in error["details"]["fields"]}
    assert reason in problems[field], problems
    assert body["slug"] not in [m["slug"] for m in admin.get(BASE).json()["marketplaces"]]
    assert "S3cretValue" not in response.text


@pytest.mark.parametrize(
    "url",
    [
        "https://ada:ghp_S3cretValue@git.example.com/team/plugins.git",
        "https://ghp_S3cretValue@git.example.com/team/plugins.git",
    ],
)
def test_a_url_with_credentials_is_refused_without_echoing_them(
    server: LiveServer, admin: httpx.Client, url: str
) -> None:
    slug = new_slug()
    response = admin.post(BASE, json={"slug": slug, "url": url, "sync": False})
    error = assert_error(response, 422, "marketplace_url_refused")
    assert "credentials" in error["message"] and "--token-env" in error["hint"]
    assert error["details"]["fields"][0]["field"] == "url"
    assert "S3cretValue" not in response.text and "ada" not in response.text
    server.services.write_behind.flush()
    assert "S3cretValue" not in repr(server.services.audit_log.recent(limit=500))


def test_a_token_is_never_taken_as_a_value(admin: httpx.Client) -> None:
    """Neither in a field of its own nor typed into token_env; neither is echoed."""
    body = {"slug": new_slug(), "url": "https://git.example.com/x.git", "sync": False}
    response = admin.post(BASE, json={**body, "token": "ghp_S3cretValue"})
    error = assert_error(response, 422, "invalid_request")
    assert error["details"]["fields"] == [{"field": "token", "problem": "unknown field"}]
    response = admin.post(BASE, json={**body, "token_env": "ghp_S3cretValue"})
    error = assert_error(response, 422, "invalid_request")
    assert error["details"]["fields"][0]["field"] == "token_env"
    assert "S3cretValue" not in response.text


def test_local_repositories_need_allow_local(live_server: LiveServer, tmp_path: Path) -> None:
    """The session's server keeps the default (marketplace.allow_local off)."""
    with live_server.client(live_server.admin_token) as admin:
        for url in (str(tmp_path / "repo.git"), "file:///srv/plugins.git", "https://10.0.0.7/p"):
            response = admin.post(BASE, json={"slug": new_slug(), "url": url, "sync": False})
            error = assert_error(response, 422, "marketplace_url_refused")
            assert "marketplace.allow_local" in error["hint"]


def test_a_slug_is_registered_once(admin: httpx.Client) -> None:
    slug = new_slug()
    add(admin, slug, "https://git.example.com/a.git")
    response = admin.post(BASE, json={"slug": slug, "url": "https://git.example.com/b.git"})
    error = assert_error(response, 409, "marketplace_exists")
    assert error["details"]["fields"][0]["field"] == "slug"
    assert admin.get(f"{BASE}/{slug}").json()["url"] == "https://git.example.com/a.git"


def test_unknown_marketplace_is_404(admin: httpx.Client) -> None:
    for method, path in [
        ("GET", f"{BASE}/nothing-here"),
        ("DELETE", f"{BASE}/nothing-here"),
        ("POST", f"{BASE}/nothing-here/sync"),
        ("GET", f"{BASE}/nothing-here/plugins"),
    ]:
        assert_error(admin.request(method, path), 404, "marketplace_not_found")


def test_sync_is_queued_and_answered_at_once(
    server: LiveServer, admin: httpx.Client, tmp_path: Path
) -> None:
    """While the store's write lock is held no sync can record its outcome, so the 202
    arriving then shows the request did not wait for the sync."""
    services = server.services
    slug = new_slug()
    add(admin, slug, str(tmp_path / "missing.git"))
    with services.store.writing():
        response = admin.post(f"{BASE}/{slug}/sync")
        assert response.status_code == 202 and response.json() == {"queued": [slug]}
        future = services.marketplaces.future(slug)
        assert future is not None and not future.done()
        assert admin.get(f"{BASE}/{slug}").json()["state"] in ("queued", "running")
        everything = admin.post(f"{BASE}/sync")  # joins the sync already on
        assert everything.status_code == 202 and slug in everything.json()["queued"]
        assert services.marketplaces.future(slug) is future
    future.result(timeout=120)
    for other in everything.json()["queued"]:
        pending = services.marketplaces.future(other)
        if pending is not None:
            pending.result(timeout=120)
    after = admin.get(f"{BASE}/{slug}").json()
    assert after["state"] == "idle" and after["last_sync_outcome"] == "failed"
    assert after["last_sync_error"] and after["last_sync_at"] is not None
    services.write_behind.flush()
    actions = [r.action for r in services.audit_log.recent(limit=500) if r.resource == slug]
    assert "marketplace.sync" in actions


def test_plugins_are_listed_with_the_groups_granted_them(
    server: LiveServer, admin: httpx.Client
) -> None:
    first, second = new_slug(), new_slug()
    add(admin, first, "https://git.example.com/first.git")
    add(admin, second, "https://git.example.com/second.git")
    seed_plugins(server.services, first, "sql-helper", "dashboards")
    seed_plugins(server.services, second, "style-guide")
    group = new_group(admin)
    grant(admin, group, f"{first}/sql-helper")
    grant(admin, "Everyone", f"{first}/sql-helper")

    plugins = admin.get(f"{BASE}/{first}/plugins").json()["plugins"]
    assert [(p["plugin"], p["grant_id"], p["groups"]) for p in plugins] == [
        ("dashboards", f"{first}/dashboards", []),
        ("sql-helper", f"{first}/sql-helper", sorted(["Everyone", group], key=str.lower)),
    ]
    assert plugins[1]["version"] == "1.0.0" and plugins[1]["description"] == "The sql-helper plugin"
    everywhere = admin.get(f"{BASE}/plugins").json()["plugins"]
    assert {f"{second}/style-guide", f"{first}/dashboards"} <= {p["grant_id"] for p in everywhere}
    assert admin.get(f"{BASE}/{first}").json()["plugins"] == 2


def test_remove_takes_the_plugins_and_their_grants(server: LiveServer, admin: httpx.Client) -> None:
    slug, kept = new_slug(), new_slug()
    add(admin, slug, "https://git.example.com/gone.git")
    add(admin, kept, "https://git.example.com/kept.git")
    seed_plugins(server.services, slug, "one", "two")
    seed_plugins(server.services, kept, "one")
    group = new_group(admin)
    grant(admin, group, f"{slug}/one")
    grant(admin, group, f"{slug}/two")
    kept_grant = grant(admin, group, f"{kept}/one")

    response = admin.delete(f"{BASE}/{slug}")
    assert response.status_code == 200
    assert response.json() == {"deleted": slug, "plugins": 2, "grants": 2}
    assert_error(admin.get(f"{BASE}/{slug}"), 404, "marketplace_not_found")
    left = admin.get("/api/admin/grants", params={"resource_type": "marketplace_plugin"}).json()
    ids = {g["resource_id"] for g in left["grants"]}
    assert not any(i.startswith(f"{slug}/") for i in ids) and kept_grant["resource_id"] in ids
    assert server.services.marketplace_store.plugins(slug) == []
    assert [p.name for p in server.services.marketplace_store.plugins(kept)] == ["one"]
    remaining = server.services.grants.all(resource_type=ResourceType.MARKETPLACE_PLUGIN)
    assert all(not g.resource_id.startswith(f"{slug}/") for g in remaining)
    # A grant of a plugin that is gone is refused.
    body = {"group": group, "resource_type": "marketplace_plugin", "resource_id": f"{slug}/one"}
    assert_error(admin.post("/api/admin/grants", json=body), 404, "resource_not_found")


def test_openapi_describes_the_routes(admin: httpx.Client) -> None:
    paths = admin.get("/api/openapi.json").json()["paths"]
    assert set(paths[BASE]) == {"get", "post"}
    assert paths[f"{BASE}/{{slug}}/sync"]["post"]["summary"] == "Queue a sync of one marketplace"
    create = admin.get("/api/openapi.json").json()["components"]["schemas"]["MarketplaceCreate"]
    assert "token" not in create["properties"] and "token_env" in create["properties"]
