"""The first admin, and recovery when every admin has been deactivated."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from agnes_mcp import bootstrap_admin
from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.bootstrap_admin import BOOTSTRAP_TOKEN_FILE, BOOTSTRAP_TOKEN_HOURS, ensure_admin
from agnes_mcp.services import Services
from agnes_mcp.store.ids import utcnow
from tests.conftest import running_server, token_for


def test_first_start_creates_an_admin_once(services: Services) -> None:
    path = ensure_admin(services)
    assert path == services.settings.state_dir / BOOTSTRAP_TOKEN_FILE
    assert (path.stat().st_mode & 0o777) == 0o600
    principal = services.tokens.authenticate(path.read_text().strip())
    assert principal.is_admin and principal.email == "admin@example.com"
    assert ensure_admin(services) is None  # an active admin exists: nothing to do


def test_restart_after_a_lockout_reactivates_the_admin(services: Services) -> None:
    path = ensure_admin(services)
    assert path is not None
    old = path.read_text().strip()
    with services.store.transaction() as cur:  # as if every admin had been deactivated
        cur.execute("UPDATE users SET active = FALSE")
    again = ensure_admin(services)
    assert again == path
    fresh = path.read_text().strip()
    assert fresh != old
    assert services.tokens.authenticate(fresh).is_admin
    assert services.users.find("admin@example.com").active


def test_system_db_is_private(services: Services) -> None:
    db = services.settings.system_db_path
    assert (db.stat().st_mode & 0o777) == 0o600
    assert (db.parent.stat().st_mode & 0o777) == 0o700


def test_the_bootstrap_token_is_for_setting_up_and_expires(services: Services) -> None:
    """It stayed on disk, usable forever: it now lives a day, and a start that finds it
    revoked or expired deletes the file (and writes a new one only if no admin can get in)."""
    path = ensure_admin(services)
    assert path is not None
    first = services.tokens.authenticate(path.read_text().strip(), record_use=False)
    assert first.token_id is not None
    expires = services.token_store.get(first.token_id).info.expires_at
    assert expires is not None
    assert (
        timedelta(hours=BOOTSTRAP_TOKEN_HOURS - 1)
        < expires - utcnow()
        <= timedelta(hours=BOOTSTRAP_TOKEN_HOURS)
    )

    services.tokens.revoke(first.token_id)  # no admin token left: the restart recovers
    assert ensure_admin(services) == path
    second = services.tokens.authenticate(path.read_text().strip(), record_use=False)
    assert second.is_admin and second.token_id != first.token_id

    admin = services.users.get(second.user_id)
    token_for(services, admin, admin=True)  # the operator's own admin token
    assert second.token_id is not None
    services.tokens.revoke(second.token_id)
    assert ensure_admin(services) is None
    assert not path.exists()  # a dead token's file does not stay


def test_the_bootstrap_token_retires_once_another_admin_acts(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        path = server.services.settings.state_dir / BOOTSTRAP_TOKEN_FILE
        raw = path.read_text().strip()
        with server.client(raw) as boot:  # its own use keeps it
            assert boot.get("/api/admin/users").status_code == 200
        assert path.exists()
        with server.client(server.admin_token) as other:  # another admin token acts
            assert other.get("/api/admin/users").status_code == 200
        assert not path.exists()
        with server.client(raw) as boot:
            refused = boot.get("/api/admin/users")
        assert refused.status_code == 401 and "token_revoked" in refused.text
        server.services.write_behind.flush()
        assert any(
            r.action == "token.revoke" and r.params.get("reason") == "bootstrap_retired"
            for r in server.services.audit_log.recent()
        )


def test_an_expired_bootstrap_tokens_file_is_deleted_when_it_expires(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file of an expired bootstrap token stayed on disk (holding a dead secret) until
    the next start: it is deleted when the token expires, and the log says so without
    the token."""
    monkeypatch.setattr(bootstrap_admin, "BOOTSTRAP_TOKEN_HOURS", 1 / 3600)  # a second
    said = threading.Event()
    lines: list[str] = []

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())
            if "has expired" in record.getMessage():
                said.set()

    handler = Watch()
    logging.getLogger("agnes.bootstrap").addHandler(handler)
    try:
        path = ensure_admin(services)
        assert path is not None and path.exists()
        raw = path.read_text().strip()
        assert said.wait(30), lines
    finally:
        logging.getLogger("agnes.bootstrap").removeHandler(handler)
    assert not path.exists()
    assert any(str(path) in line and "has expired" in line for line in lines), lines
    assert all(raw not in line for line in lines)


def test_a_web_session_signed_in_with_another_admin_token_retires_the_bootstrap_token(
    services: Services,
) -> None:
    """A web session's principal carried no token id, so a session the bootstrap admin
    signed in to with their own new admin token looked like the bootstrap token at work:
    the bootstrap token stayed alive (and its file on disk) while the admin worked with
    another token. The session now acts as the token it was signed in with."""
    path = ensure_admin(services)
    assert path is not None
    boot = services.tokens.authenticate(path.read_text().strip(), record_use=False)
    own, _ = services.tokens.create(
        boot.user_id, "operator", [TokenScope.DATA.value, TokenScope.ADMIN.value], None
    )
    with_boot, _ = services.web_sessions.sign_in(
        boot.user_id, "token", token_id=boot.token_id, scopes=boot.scopes
    )
    assert with_boot.principal.token_id == boot.token_id
    services.access.require_admin(with_boot.principal)  # the bootstrap token's own session
    assert path.exists()
    session, _ = services.web_sessions.sign_in(
        boot.user_id, "token", token_id=own.id, scopes=frozenset(own.scopes)
    )
    assert session.principal.token_id == own.id
    services.access.require_admin(session.principal)
    assert not path.exists()
    assert not services.tokens.alive(boot.token_id or "")
