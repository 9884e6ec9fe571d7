"""The first start: make sure someone can administer the server.

When the Admin group has no members, create ``admin@<company_domain>``, put it in
Admin and write its token once to ``DATA_DIR/state/bootstrap-token`` (mode 0600).
The token is never logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.services import Services
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.users import ADMIN_GROUP_ID

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
    """Create the first admin if the Admin group is empty; return the token file written."""
    if services.groups.members(ADMIN_GROUP_ID):
        return None
    email = f"admin@{services.settings.company_domain}"
    user = services.users.by_email(email) or services.users.add(email, "Administrator")
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
