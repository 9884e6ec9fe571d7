"""Group sync from Google Workspace against a local Directory API and token endpoint
that verify the service account's signed assertion (tests/fake_google_directory.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.errors import TokenRevoked
from agnes_mcp.google_groups.errors import GroupSyncDisabled
from agnes_mcp.google_groups.mapping import agnes_group_name
from agnes_mcp.google_groups.service import GroupSync
from agnes_mcp.services import Services
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.ids import utcnow
from tests.conftest import add_user, make_settings, running_server, token_for
from tests.fake_google_directory import (
    DELEGATED_ADMIN,
    FakeDirectory,
    FakeDirectoryServer,
    service_account_json,
)

ENV = "TEST_GOOGLE_SA_KEY"


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048)


@pytest.fixture
def directory(rsa_key: RSAKey) -> Iterator[FakeDirectoryServer]:
    public = RSAKey.import_key(rsa_key.as_pem(private=False))
    with FakeDirectoryServer(FakeDirectory(public_key=public)) as server:
        yield server


@pytest.fixture
def key_env(
    monkeypatch: pytest.MonkeyPatch, rsa_key: RSAKey, directory: FakeDirectoryServer
) -> str:
    value = service_account_json(rsa_key, directory.fake.token_url)
    monkeypatch.setenv(ENV, value)
    return value


def google_settings(
    data_dir: Path, directory: FakeDirectoryServer, **google: object
) -> dict[str, object]:
    return {
        "google_groups": {
            "api_url": directory.api_url,
            "credentials_env": ENV,
            "delegated_admin": DELEGATED_ADMIN,
            **google,
        }
    }


def open_services(tmp_path: Path, directory: FakeDirectoryServer, **google: object) -> Services:
    settings = make_settings(
        tmp_path / "data",
        write_behind_seconds=0.05,
        scheduler_enabled=False,
        auth=google_settings(tmp_path, directory, **google),
    )
    return Services.open(settings)


def quick_sync(services: Services, **kwargs: object) -> GroupSync:
    """The service as Services builds it, with short retry waits."""
    return GroupSync(
        services.settings,
        services.store,
        services.users,
        services.write_behind,
        retry_backoff_seconds=0.01,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def gservices(tmp_path: Path, directory: FakeDirectoryServer, key_env: str) -> Iterator[Services]:
    opened = open_services(tmp_path, directory)
    try:
        yield opened
    finally:
        opened.close()


def sources_by_group(services: Services, user_id: str) -> dict[str, set[str]]:
    with services.store.cursor() as cur:
        rows = cur.execute(
            "SELECT g.name, m.source FROM user_group_members m "
            "JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = ? AND g.id <> 'everyone'",
            [user_id],
        ).fetchall()
    out: dict[str, set[str]] = {}
    for name, source in rows:
        out.setdefault(name, set()).add(source)
    return out


# --- reading and writing ----------------------------------------------------------------


def test_all_pages_are_read_and_groups_created(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    fake = directory.fake
    user = add_user(gservices, email="ana@example.com")
    groups = [f"team-{n}@example.com" for n in range(5)]
    fake.set_groups(user.email, groups)
    sync = gservices.group_sync
    assert sync.enabled

    result = sync.sync_user(user.id, user.email)

    assert result.outcome == "ok", result.error
    assert result.google_groups == 5
    assert result.groups == [f"team-{n}" for n in range(5)]
    assert result.created == result.groups and result.added == result.groups
    pages = fake.group_requests
    assert len(pages) == 3  # 2 + 2 + 1
    assert all(p["userKey"] == "ana@example.com" and p["maxResults"] == "200" for p in pages)
    assert "pageToken" not in pages[0] and pages[1]["pageToken"] and pages[2]["pageToken"]
    made = gservices.groups.by_name("team-3")
    assert made is not None and made.description == "Synced from Google group team-3@example.com"
    assert sources_by_group(gservices, user.id) == {g: {"google_sync"} for g in result.groups}
    status = sync.status(user.id)
    assert status is not None and status.outcome == "ok" and status.groups == 5
    assert status.error is None

    again = sync.sync_user(user.id, user.email)  # the access token is reused
    assert again.outcome == "ok" and again.added == [] and again.created == []
    assert fake.token_requests == 1


def test_prefix_filter_and_admin_group(
    tmp_path: Path, directory: FakeDirectoryServer, key_env: str
) -> None:
    services = open_services(
        tmp_path, directory, prefix="agnes-", admin_group="IT-Admins@example.com"
    )
    try:
        user = add_user(services, email="bo@example.com")
        directory.fake.set_groups(
            user.email,
            ["agnes-finance@example.com", "marketing@example.com", "it-admins@example.com"],
        )
        result = services.group_sync.sync_user(user.id, user.email)
        assert result.outcome == "ok", result.error
        assert result.groups == ["Admin", "agnes-finance"]
        assert services.groups.by_name("marketing") is None
        assert ADMIN_GROUP_ID in services.groups.group_ids_of(user.id)
    finally:
        services.close()


def test_a_google_group_named_like_a_builtin_group_is_not_joined(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    user = add_user(gservices, email="cy@example.com")
    directory.fake.set_groups(
        user.email, ["admin@example.com", "Everyone@example.com", "sales@example.com"]
    )
    result = gservices.group_sync.sync_user(user.id, user.email)
    assert result.outcome == "ok"
    assert result.groups == ["sales"]
    assert len(result.skipped) == 2 and "built-in group 'Admin'" in result.skipped[0]
    assert ADMIN_GROUP_ID not in gservices.groups.group_ids_of(user.id)


def test_a_google_group_renamed_into_an_existing_groups_name_does_not_join_it(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    """Any employee may make a Google group in many workspaces: "'finance@..." became
    'finance' and joined the admins' finance group, grants and all. A name that had to
    be changed joins only the group synced from that very Google group."""
    finance = gservices.groups.add("finance", "made by an admin, granted the ledgers")
    user = add_user(gservices, email="eve@example.com")
    directory.fake.set_groups(user.email, ["'finance@example.com", "o'brien+ops@example.com"])
    result = gservices.group_sync.sync_user(user.id, user.email)
    assert result.outcome == "ok", result.error
    assert finance.id not in gservices.groups.group_ids_of(user.id)
    assert result.groups == ["o-brien-ops"] and result.created == ["o-brien-ops"]
    assert len(result.skipped) == 1 and "'finance@example.com" in result.skipped[0]
    again = gservices.group_sync.sync_user(user.id, user.email)  # its own group, again
    assert again.groups == ["o-brien-ops"] and again.created == []
    other = add_user(gservices, email="mal@example.com")
    directory.fake.set_groups(other.email, ["o-brien+ops@example.com", "finance@example.com"])
    taken = gservices.group_sync.sync_user(other.id, other.email)
    assert taken.groups == ["finance"]  # the exact name joins, as documented
    assert "o-brien+ops@example.com" in taken.skipped[0]


def test_a_group_made_for_a_renamed_google_group_is_never_shared_with_an_exact_one(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    """The rule, both ways: an Agnes group belongs to the Google group it was synced
    from. "'finance@..." (any employee may make one) synced first made 'finance', and
    the real finance@ group's members then joined it: whatever an admin granted
    'finance' went to both. And a user in both, listed renamed-first by the Directory,
    had the renamed one chosen and the exact one dropped without a word."""
    eve = add_user(gservices, email="eve@example.com")
    directory.fake.set_groups(eve.email, ["'finance@example.com"])
    assert gservices.group_sync.sync_user(eve.id, eve.email).created == ["finance"]
    mal = add_user(gservices, email="mal@example.com")
    directory.fake.set_groups(mal.email, ["Finance@Example.com "])
    joined = gservices.group_sync.sync_user(mal.id, mal.email)
    assert joined.outcome == "ok" and joined.groups == []
    assert "finance@example.com" in joined.skipped[0]
    assert "'finance@example.com" in joined.skipped[0]  # names whose group it is
    both = add_user(gservices, email="bo@example.com")
    directory.fake.set_groups(both.email, ["'payroll@example.com", "PAYROLL@example.com"])
    chosen = gservices.group_sync.sync_user(both.id, both.email)
    assert chosen.groups == ["payroll"] and chosen.created == ["payroll"]
    assert len(chosen.skipped) == 1 and "'payroll@example.com" in chosen.skipped[0]
    assert gservices.groups.by_name("payroll").description == (  # type: ignore[union-attr]
        "Synced from Google group payroll@example.com"
    )
    again = gservices.group_sync.sync_user(eve.id, eve.email)  # its own group, still
    assert again.groups == ["finance"] and again.skipped == []


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("Data-Team@example.com", "data-team"),
        ("o'brien+ops@example.com", "o-brien-ops"),
        ("__x@example.com", "x"),
        ("___@example.com", None),
        ("a" * 80 + "@example.com", "a" * 64),
    ],
)
def test_group_name_rule(email: str, name: str | None) -> None:
    assert agnes_group_name(email) == name


def test_removed_google_group_is_removed_and_admin_rows_stay(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    user = add_user(gservices, email="di@example.com")
    finance = gservices.groups.add("finance")
    ops = gservices.groups.add("ops")
    gservices.groups.add_member(finance.id, user.id, MembershipSource.ADMIN)
    gservices.groups.add_member(ops.id, user.id, MembershipSource.ADMIN)
    directory.fake.set_groups(user.email, ["finance@example.com", "sales@example.com"])
    first = gservices.group_sync.sync_user(user.id, user.email)
    assert first.outcome == "ok" and first.created == ["sales"]  # finance already existed
    assert sources_by_group(gservices, user.id) == {
        "finance": {"admin", "google_sync"},
        "ops": {"admin"},
        "sales": {"google_sync"},
    }

    directory.fake.set_groups(user.email, ["sales@example.com"])
    second = gservices.group_sync.sync_user(user.id, user.email)

    assert second.removed == ["finance"] and second.added == []
    assert sources_by_group(gservices, user.id) == {
        "finance": {"admin"},
        "ops": {"admin"},
        "sales": {"google_sync"},
    }


def test_sessions_see_new_groups_at_once(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    user = add_user(gservices, email="ed@example.com")
    _, cookie = gservices.web_sessions.sign_in(user.id, "oidc")
    before = gservices.web_sessions.verify(cookie).principal.group_ids
    directory.fake.set_groups(user.email, ["analysts@example.com"])
    gservices.group_sync.sync_user(user.id, user.email)
    group = gservices.groups.by_name("analysts")
    assert group is not None and group.id not in before
    assert group.id in gservices.web_sessions.verify(cookie).principal.group_ids


def test_the_last_admin_keeps_admin(
    tmp_path: Path, directory: FakeDirectoryServer, key_env: str
) -> None:
    services = open_services(tmp_path, directory, admin_group="admins@example.com")
    try:
        sync = services.group_sync
        user = add_user(services, email="fi@example.com")
        directory.fake.set_groups(user.email, ["admins@example.com"])
        assert sync.sync_user(user.id, user.email).groups == ["Admin"]

        directory.fake.set_groups(user.email, [])
        kept = sync.sync_user(user.id, user.email)
        assert kept.outcome == "ok" and kept.removed == [] and kept.groups == ["Admin"]
        assert kept.kept == ["Admin: this is the last active admin"]

        admin_token = token_for(services, user, admin=True)
        add_user(services, groups=(ADMIN_GROUP_ID,))
        gone = sync.sync_user(user.id, user.email)
        assert gone.removed == ["Admin"] and gone.kept == []
        assert ADMIN_GROUP_ID not in services.groups.group_ids_of(user.id)
        # Leaving Admin through the sync ends their admin-scoped token for good.
        directory.fake.set_groups(user.email, ["admins@example.com"])
        assert sync.sync_user(user.id, user.email).groups == ["Admin"]
        with pytest.raises(TokenRevoked):
            services.tokens.authenticate(admin_token)
        assert len(gone.revoked_tokens) == 1
    finally:
        services.close()


def test_each_sync_is_audited(gservices: Services, directory: FakeDirectoryServer) -> None:
    user = add_user(gservices, email="gu@example.com")
    directory.fake.set_groups(user.email, ["sales@example.com"])
    gservices.group_sync.sync_user(user.id, user.email, trigger="sign_in")
    gservices.write_behind.flush()
    rows = [r for r in gservices.audit_log.recent(user_id=user.id) if r.action == "groups.sync"]
    assert len(rows) == 1
    assert rows[0].result == "ok" and rows[0].resource == user.id
    assert rows[0].params["trigger"] == "sign_in" and rows[0].params["added"] == ["sales"]


# --- failures -----------------------------------------------------------------------------


def _break_server_error(fake: FakeDirectory) -> None:
    fake.groups_fault = ("status", 500)


def _break_garbage(fake: FakeDirectory) -> None:
    fake.groups_fault = ("garbage", 200)


def _break_token(fake: FakeDirectory) -> None:
    fake.issued.clear()  # every access token revoked: the client must ask again ...
    fake.token_refusal = "invalid_grant"  # ... and is refused


def _break_unknown_user(fake: FakeDirectory) -> None:
    fake.memberships.clear()


@pytest.mark.parametrize(
    ("breaker", "code", "words"),
    [
        (
            _break_server_error,
            "directory_unavailable",
            ["HTTP 500", "/admin/directory/v1/groups", "3 attempts"],
        ),
        (_break_garbage, "directory_response_invalid", ["not JSON", "/admin/directory/v1/groups"]),
        (_break_token, "google_token_refused", ["HTTP 400", "invalid_grant", "/token"]),
        (_break_unknown_user, "directory_refused", ["HTTP 404", "Resource Not Found: userKey"]),
    ],
)
def test_a_failed_read_keeps_the_previous_groups(
    gservices: Services,
    directory: FakeDirectoryServer,
    key_env: str,
    breaker: object,
    code: str,
    words: list[str],
) -> None:
    fake = directory.fake
    sync = quick_sync(gservices)
    user = add_user(gservices, email="ha@example.com")
    fake.set_groups(user.email, ["sales@example.com", "ops@example.com"])
    assert sync.sync_user(user.id, user.email).outcome == "ok"
    before = sources_by_group(gservices, user.id)
    generation = gservices.store.generation
    requests = len(fake.group_requests)

    breaker(fake)  # type: ignore[operator]
    fake.set_groups("other@example.com", [])  # the Directory changed meanwhile
    if breaker is not _break_unknown_user:
        fake.set_groups(user.email, ["marketing@example.com"])
    result = sync.sync_user(user.id, user.email)

    assert result.outcome == "failed" and result.error is not None
    assert result.error["code"] == code
    for word in words:
        assert word in result.error["message"], result.error["message"]
    assert result.groups == ["ops", "sales"]
    assert sources_by_group(gservices, user.id) == before
    assert gservices.groups.by_name("marketing") is None
    status = sync.status(user.id)
    assert status is not None and status.outcome == "failed" and status.groups == 2
    assert status.error == result.error["message"]
    assert gservices.store.generation == generation + 1  # the status row, nothing else
    secret = key_env.split('"private_key": "')[1][40:80]
    assert secret not in result.error["message"]
    assert "ya29." not in result.error["message"]
    if breaker is _break_server_error:
        assert len(fake.group_requests) == requests + 3  # retried
    gservices.write_behind.flush()
    audit = [r for r in gservices.audit_log.recent(user_id=user.id) if r.action == "groups.sync"]
    assert audit[0].result == code and audit[0].params["outcome"] == "failed"


def test_a_rate_limit_answered_as_403_is_waited_out(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    """The Directory API says "too fast" with a 403 whose reason is userRateLimitExceeded
    (or quotaExceeded, rateLimitExceeded), to be retried with backoff: not a refusal."""
    user = add_user(gservices, email="rl@example.com")
    directory.fake.set_groups(user.email, ["sales@example.com"])
    directory.fake.rate_limited = 2
    result = quick_sync(gservices).sync_user(user.id, user.email)
    assert result.outcome == "ok", result.error
    assert result.groups == ["sales"]
    assert len(directory.fake.group_requests) == 3


def test_a_long_retry_after_ends_the_retries_and_says_how_long(
    gservices: Services, directory: FakeDirectoryServer
) -> None:
    """Retry-After as an HTTP date (RFC 9110) is read; a wait past what a sync waits in
    place is not cut short by calling again sooner."""
    user = add_user(gservices, email="ra@example.com")
    directory.fake.groups_fault = ("status", 429)
    directory.fake.retry_after = format_datetime(datetime.now(UTC) + timedelta(hours=1), True)
    result = quick_sync(gservices).sync_user(user.id, user.email)
    assert result.outcome == "failed" and result.error is not None
    assert result.error["code"] == "directory_unavailable"
    assert "Google asked to wait" in result.error["message"]
    assert len(directory.fake.group_requests) == 1


def test_a_wrong_key_is_refused_by_the_token_endpoint(
    tmp_path: Path, directory: FakeDirectoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = RSAKey.generate_key(2048)
    monkeypatch.setenv(ENV, service_account_json(other, directory.fake.token_url))
    services = open_services(tmp_path, directory)
    try:
        user = add_user(services, email="io@example.com")
        directory.fake.set_groups(user.email, ["sales@example.com"])
        result = services.group_sync.sync_user(user.id, user.email)
        assert result.outcome == "failed" and result.error is not None
        assert "Invalid JWT Signature" in result.error["message"]
        assert directory.fake.refused_assertions == ["Invalid JWT Signature."]
        assert directory.fake.group_requests == []
    finally:
        services.close()


def test_the_assertion_names_the_delegated_admin(
    tmp_path: Path, directory: FakeDirectoryServer, key_env: str
) -> None:
    services = open_services(tmp_path, directory, delegated_admin="someone-else@example.com")
    try:
        user = add_user(services, email="jo@example.com")
        result = services.group_sync.sync_user(user.id, user.email)
        assert result.error is not None and "unauthorized_client" in result.error["message"]
    finally:
        services.close()


def test_on_sign_in_never_raises(gservices: Services, directory: FakeDirectoryServer) -> None:
    user = add_user(gservices, email="ka@example.com")
    directory.fake.groups_fault = ("garbage", 502)
    sync = quick_sync(gservices)
    sync.on_sign_in(user.id, user.email)  # returns, never raises
    status = sync.status(user.id)
    assert status is not None and status.outcome == "failed"
    sync.on_sign_in("usr_missing", "nobody@example.com")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "unset or empty"),
        ("not json {", "does not hold JSON"),
        ('{"type": "authorized_user"}', "'authorized_user'"),
        ('{"client_email": "x@example.com"}', "no private_key"),
        (
            '{"client_email": "x@example.com", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
            'c2VjcmV0LWtleS1tYXRlcmlhbA==\\n-----END PRIVATE KEY-----"}',
            "not a PEM-encoded RSA private key",
        ),
    ],
)
def test_disabled_unless_the_env_var_holds_a_service_account_key(
    tmp_path: Path,
    directory: FakeDirectoryServer,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
    reason: str,
) -> None:
    if value is not None:
        monkeypatch.setenv(ENV, value)
    services = open_services(tmp_path, directory)
    try:
        sync = services.group_sync
        assert not sync.enabled
        assert sync.disabled_reason is not None and reason in sync.disabled_reason
        assert "c2VjcmV0" not in sync.disabled_reason
        user = add_user(services)
        with pytest.raises(GroupSyncDisabled, match=ENV):
            sync.sync_user(user.id, user.email)
        sync.on_sign_in(user.id, user.email)  # a no-op
        assert sync.status(user.id) is None and directory.fake.token_requests == 0
    finally:
        services.close()


def test_not_configured_is_disabled(services: Services) -> None:
    assert not services.group_sync.enabled
    with pytest.raises(GroupSyncDisabled, match="credentials_env is not set"):
        services.group_sync.sync_all()


# --- everyone, on a schedule ----------------------------------------------------------------


def test_sync_all_and_the_schedule(gservices: Services, directory: FakeDirectoryServer) -> None:
    fake = directory.fake
    a = add_user(gservices, email="la@example.com")
    b = add_user(gservices, email="mo@example.com")
    add_user(gservices, email="outsider@elsewhere.org")
    gone = add_user(gservices, email="ni@example.com")
    gservices.users.set_active(gone.id, False)
    fake.set_groups(a.email, ["sales@example.com"])  # b is unknown to the Directory

    summary = gservices.group_sync.sync_all()
    assert (summary.users, summary.ok, summary.failed) == (2, 1, 1)
    assert summary.failures[0]["email"] == b.email
    assert "HTTP 404" in summary.failures[0]["message"]
    assert {p["userKey"] for p in fake.group_requests} == {a.email, b.email}

    now = [utcnow()]
    sync = quick_sync(gservices, clock=lambda: now[0])
    fake.set_groups(b.email, ["ops@example.com"])
    asked = len(fake.group_requests)
    wait = sync.sync_due()  # both synced just now: nobody is due
    assert len(fake.group_requests) == asked
    assert 23 * 3600 < wait <= 24 * 3600
    now[0] += timedelta(hours=24, seconds=1)
    wait = sync.sync_due()
    assert len(fake.group_requests) == asked + 2
    assert gservices.groups.by_name("ops") is not None
    assert wait == 24 * 3600  # from the new clock's point of view, both are fresh


def test_the_schedule_thread_runs_and_stops_promptly(
    tmp_path: Path, directory: FakeDirectoryServer, key_env: str
) -> None:
    settings: AgnesSettings = make_settings(
        tmp_path / "data",
        write_behind_seconds=0.05,
        auth=google_settings(tmp_path, directory),
    )
    services = Services.open(settings)
    try:
        user = add_user(services, email="ol@example.com")
        directory.fake.set_groups(user.email, ["sales@example.com"])
        services.group_sync.start()
        assert directory.fake.wait_for_group_requests(1)
        started = time.perf_counter()
        services.group_sync.stop()
        assert time.perf_counter() - started < 5
        status = services.group_sync.status(user.id)
        assert status is not None and status.outcome == "ok"
    finally:
        services.close()


def test_stop_interrupts_a_retry_wait(gservices: Services, directory: FakeDirectoryServer) -> None:
    user = add_user(gservices, email="pa@example.com")
    directory.fake.groups_fault = ("status", 503)
    sync = GroupSync(
        gservices.settings,
        gservices.store,
        gservices.users,
        gservices.write_behind,
        retry_backoff_seconds=600,
    )
    outcome: list[str] = []
    worker = threading.Thread(
        target=lambda: outcome.append(sync.sync_user(user.id, user.email).outcome)
    )
    worker.start()
    assert directory.fake.wait_for_group_requests(1)
    started = time.perf_counter()
    sync.stop()
    worker.join(timeout=10)
    assert not worker.is_alive() and time.perf_counter() - started < 5
    assert outcome == ["failed"]


# --- POST /auth/refresh-groups ----------------------------------------------------------------


def test_refresh_route(tmp_path: Path, directory: FakeDirectoryServer, key_env: str) -> None:
    fake = directory.fake
    with running_server(
        tmp_path / "data", scheduler_enabled=False, auth=google_settings(tmp_path, directory)
    ) as live:
        services = live.services
        user = add_user(services, email="qu@example.com")
        other = add_user(services, email="ra@example.com")
        stranger = add_user(services, email="si@example.com")
        fake.set_groups(user.email, ["sales@example.com"])
        fake.set_groups(other.email, ["ops@example.com", "finance@example.com"])
        session, cookie = services.web_sessions.sign_in(user.id, "oidc")

        with httpx.Client(base_url=live.base_url, timeout=30) as anonymous:
            r = anonymous.post("/auth/refresh-groups", data={"csrf": session.csrf})
            assert r.status_code == 303 and r.headers["location"] == "/auth/login?next=/me"
        with httpx.Client(
            base_url=live.base_url, timeout=30, cookies={"agnes_session": cookie}
        ) as browser:
            r = browser.post("/auth/refresh-groups", data={"csrf": "wrong"})
            assert r.status_code == 403 and "CSRF" in r.text
            assert fake.group_requests == []

            r = browser.post("/auth/refresh-groups", data={"csrf": session.csrf})
            assert r.status_code == 303 and r.headers["location"] == "/me?groups=refreshed"
            assert sources_by_group(services, user.id) == {"sales": {"google_sync"}}

            r = browser.post("/auth/refresh-groups", data={"csrf": session.csrf})
            assert r.status_code == 429
            assert 1 <= int(r.headers["retry-after"]) <= 30
            assert len(fake.group_requests) == 1

        other_session, other_cookie = services.web_sessions.sign_in(other.id, "oidc")
        with httpx.Client(
            base_url=live.base_url, timeout=30, cookies={"agnes_session": other_cookie}
        ) as client:
            r = client.post(
                "/auth/refresh-groups",
                data={"csrf": other_session.csrf},
                headers={"Accept": "application/json"},
            )
            assert r.status_code == 200
            body = r.json()
            assert body["outcome"] == "ok" and body["groups"] == ["finance", "ops"]
            r = client.post(
                "/auth/refresh-groups",
                headers={"Accept": "application/json", "X-CSRF-Token": other_session.csrf},
            )
            assert r.status_code == 429 and r.json()["error"]["code"] == "group_refresh_too_soon"

        stranger_session, stranger_cookie = services.web_sessions.sign_in(stranger.id, "oidc")
        with httpx.Client(
            base_url=live.base_url, timeout=30, cookies={"agnes_session": stranger_cookie}
        ) as client:
            r = client.post("/auth/refresh-groups", data={"csrf": stranger_session.csrf})
            assert r.status_code == 303 and r.headers["location"] == "/me?groups=failed"
            status = services.group_sync.status(stranger.id)
            assert status is not None and status.outcome == "failed"
            assert status.error is not None and "HTTP 404" in status.error


def test_refresh_route_when_sync_is_off(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", scheduler_enabled=False) as live:
        user = add_user(live.services)
        session, cookie = live.services.web_sessions.sign_in(user.id, "token")
        with httpx.Client(
            base_url=live.base_url, timeout=30, cookies={"agnes_session": cookie}
        ) as client:
            r = client.post("/auth/refresh-groups", data={"csrf": session.csrf})
            assert r.status_code == 409 and "not enabled" in r.text
            r = client.post(
                "/auth/refresh-groups",
                data={"csrf": session.csrf},
                headers={"Accept": "application/json"},
            )
            assert r.status_code == 409 and r.json()["error"]["code"] == "group_sync_disabled"
