"""The first admin, and recovery when every admin has been deactivated."""

from __future__ import annotations

from agnes_mcp.bootstrap_admin import BOOTSTRAP_TOKEN_FILE, ensure_admin
from agnes_mcp.services import Services


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
