"""Every start: make sure someone can administer the server.

When no active admin can get in (a first start; admins locked out by deactivation; or,
without OIDC sign-in, no admin holding a usable admin-scoped token), ``admin@<company_domain>``
is created or reactivated, put in Admin, and a new token is written to
``DATA_DIR/state/bootstrap-token`` (mode 0600). Restarting the server is therefore the
recovery path. The token is never logged.

That token is for setting the server up, not for keeping: it expires after
:data:`BOOTSTRAP_TOKEN_HOURS`, and it is revoked and its file deleted as soon as another
admin (a different user, or a different admin-scoped token) acts. When it expires, its
file is deleted then (a timer, not the next start: an expired token's file stayed on disk
until a restart); a start that finds the file holding a token no longer alive deletes it
too. Each step is logged, never the token.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.auth.tokens import TOKEN_PATTERN
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.services import Services
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.users import active_admins

logger = logging.getLogger("agnes.bootstrap")

BOOTSTRAP_TOKEN_FILE = "bootstrap-token"  # noqa: S105 - a file name, not a secret
BOOTSTRAP_TOKEN_HOURS = 24  # long enough to set the server up; a restart makes a new one


def write_secret_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` readable by the owner only (atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.chmod(0o600)
    tmp.replace(path)


def usable_admin_token_ids(services: Services) -> list[str]:
    """The admin-scoped tokens of active admins that are neither revoked nor expired."""
    now = utcnow()
    active = {u.id for u in services.users.all(include_inactive=False)}
    admins = {m.user_id for m in services.groups.members(ADMIN_GROUP_ID)} & active
    return [
        t.id
        for t in services.token_store.all()
        if TokenScope.ADMIN.value in t.scopes
        and t.revoked_at is None
        and (t.expires_at is None or t.expires_at > now)
        and t.user_id in admins
    ]


def ensure_admin(services: Services) -> Path | None:
    """Create (or reactivate) an admin if none can get in; return the token file written."""
    path = services.settings.state_dir / BOOTSTRAP_TOKEN_FILE
    kept = _kept_bootstrap(services, path)
    if kept is not None:
        _watch(services, path, *kept)
    way_in = active_admins(services.store) > 0 and (
        bool(services.settings.auth.oidc.client_id) or bool(usable_admin_token_ids(services))
    )
    if way_in:
        return None
    email = f"admin@{services.settings.company_domain}"
    user = services.users.by_email(email) or services.users.add(email, "Administrator")
    if not user.active:
        user = services.users.set_active(user.id, True)
    services.groups.add_member(
        ADMIN_GROUP_ID, user.id, MembershipSource.SYSTEM_SEED, added_by="bootstrap"
    )
    info, raw = services.tokens.create(
        user.id,
        "bootstrap",
        [TokenScope.DATA.value, TokenScope.ADMIN.value],
        timedelta(hours=BOOTSTRAP_TOKEN_HOURS),
    )
    write_secret_file(path, raw + "\n")
    _watch(services, path, info.id, user.id, info.expires_at)
    logger.warning(
        "Created admin user %s; its token is in %s (mode 0600) and expires in %d hours. "
        "Use it to set up your admins: it is revoked and the file deleted as soon as "
        "another admin, or another admin token, is used.",
        email,
        path,
        BOOTSTRAP_TOKEN_HOURS,
    )
    return path


def _kept_bootstrap(services: Services, path: Path) -> tuple[str, str, datetime | None] | None:
    """``(token id, user id, expiry)`` of a bootstrap token on disk that is still alive; a file
    holding anything else is deleted."""
    if not path.exists():
        return None
    match = TOKEN_PATTERN.match(path.read_text(encoding="utf-8", errors="replace").strip())
    record = services.token_store.by_prefix(match[1]) if match else None
    if record is not None and services.tokens.alive(record.info.id):
        return record.info.id, record.info.user_id, record.info.expires_at
    path.unlink(missing_ok=True)
    logger.warning("Deleted %s: the bootstrap token in it was revoked or had expired.", path)
    return None


def _watch(
    services: Services, path: Path, token_id: str, user_id: str, expires_at: datetime | None
) -> None:
    """Retire the bootstrap token the first time another admin acts, and delete its file
    when it expires."""
    lock = threading.Lock()
    retired = False

    def on_expiry() -> None:
        nonlocal retired
        with lock:
            if retired:
                return
            if services.tokens.alive(token_id):  # not yet (a clock that was set back)
                _expiry_timer(on_expiry, expires_at, at_least=60.0)
                return
            retired = True
            if not _holds(services, path, token_id):
                return  # a later start wrote another token there
            path.unlink(missing_ok=True)
        logger.warning("Deleted %s: the bootstrap token in it has expired.", path)

    timer = _expiry_timer(on_expiry, expires_at)

    def on_admin(actor: Principal) -> None:
        nonlocal retired
        if retired or (actor.user_id == user_id and actor.token_id in (None, token_id)):
            return  # the bootstrap admin with its own token, or in a session opened with it
        with lock:
            if retired:
                return
            retired = True
            if timer is not None:
                timer.cancel()
            if services.tokens.alive(token_id):
                services.tokens.revoke(token_id)
            path.unlink(missing_ok=True)
        services.audit.record(
            actor, "token.revoke", resource=token_id, params={"reason": "bootstrap_retired"}
        )
        logger.warning(
            "Revoked the bootstrap token and deleted %s: %s has acted as an admin.",
            path,
            actor.email,
        )

    services.access.admin_listeners.append(on_admin)


def _expiry_timer(
    action: Callable[[], None], expires_at: datetime | None, *, at_least: float = 0.01
) -> threading.Timer | None:
    """A daemon timer running ``action`` once ``expires_at`` has passed (none without one)."""
    if expires_at is None:
        return None
    seconds = max((expires_at - utcnow()).total_seconds(), 0.0) + at_least
    timer = threading.Timer(seconds, action)
    timer.name = "agnes-bootstrap-expiry"
    timer.daemon = True
    timer.start()
    return timer


def _holds(services: Services, path: Path, token_id: str) -> bool:
    """Whether the token file at ``path`` still holds the token ``token_id``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return False
    match = TOKEN_PATTERN.match(text)
    record = services.token_store.by_prefix(match[1]) if match else None
    return record is not None and record.info.id == token_id
