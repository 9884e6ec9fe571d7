"""Every start: make sure someone can administer the server.

When the Admin group has no *active* member (a first start, or admins locked out by
deactivation), ``admin@<company_domain>`` is created or reactivated, put in Admin, and
a new token is written to ``DATA_DIR/state/bootstrap-token`` (mode 0600). Restarting
the server is therefore the recovery path. The token is never logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.services import Services
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.users import active_admins

logger = logging.getLogger("agnes.bootstrap")

BOOTSTRAP_TOKEN_FILE = "bootstrap-token"  # noqa: S105 - a file name, not a secret


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


def ensure_admin(services: Services) -> Path | None:
    """Create (or reactivate) an admin if none is active; return the token file written."""
    if active_admins(services.store) > 0:
        return None
    email = f"admin@{services.settings.company_domain}"
    user = services.users.by_email(email) or services.users.add(email, "Administrator")
    if not user.active:
        user = services.users.set_active(user.id, True)
    services.groups.add_member(
        ADMIN_GROUP_ID, user.id, MembershipSource.SYSTEM_SEED, added_by="bootstrap"
    )
    _, raw = services.tokens.create(
        user.id, "bootstrap", [TokenScope.DATA.value, TokenScope.ADMIN.value]
    )
    path = services.settings.state_dir / BOOTSTRAP_TOKEN_FILE
    write_secret_file(path, raw + "\n")
    logger.warning("Created admin user %s; its token is in %s (mode 0600).", email, path)
    return path
