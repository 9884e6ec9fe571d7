"""Describing the caller: the answer of ``GET /api/whoami`` and the MCP ``whoami`` tool."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from agnes_mcp.auth.principal import Principal


class WhoAmI(BaseModel):
    user_id: str
    email: str
    name: str | None
    groups: list[str]
    is_admin: bool
    scopes: list[str]
    token_id: str | None
    client: str | None = None  # the OAuth client acting for the user (None with a PAT)


def describe(principal: Principal, group_names: Mapping[str, str]) -> WhoAmI:
    """``principal`` as its caller sees it; ``group_names`` maps group ids to names."""
    names = group_names
    return WhoAmI(
        user_id=principal.user_id,
        email=principal.email,
        name=principal.name,
        groups=sorted(names[g] for g in principal.group_ids if g in names),
        is_admin=principal.is_admin,
        scopes=sorted(principal.scopes),
        token_id=principal.token_id,
        client=principal.client_name,
    )
