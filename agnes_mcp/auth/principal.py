"""Who is calling: the user behind a verified token, their groups and the token's scopes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID


class TokenScope(StrEnum):
    """What kinds of action a token may take. Groups decide *which data*; scopes decide *what*."""

    DATA = "data"  # catalog, query, pull, push, snapshots: everything a user does with data
    ADMIN = "admin"  # the admin API; only effective for members of the Admin group


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    name: str | None
    group_ids: frozenset[str]
    scopes: frozenset[str]
    token_id: str | None = None
    client_name: str | None = None  # the OAuth client acting for the user, if any

    @property
    def in_admin_group(self) -> bool:
        return ADMIN_GROUP_ID in self.group_ids

    @property
    def is_admin(self) -> bool:
        """May use the admin API: an Admin group member with an admin-scoped token."""
        return self.in_admin_group and TokenScope.ADMIN in self.scopes

    def has_scope(self, scope: TokenScope) -> bool:
        return scope in self.scopes
