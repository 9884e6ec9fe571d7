"""OAuth grants of MCP clients, listed and revoked: one implementation for the admin REST
routes (``/api/admin/oauth-grants``), the admin app's Tokens page, the CLI (through the
REST routes) and ``/me``.

A grant is one consent (user U lets client C act for them on ``/mcp``); revoking it ends
every access and refresh token of it on the very next call. Admins may list and revoke
anyone's grants; a person may revoke their own, and another person's grant id is answered
as if it did not exist (nothing about it is revealed). Every revocation writes one audit
row, ``oauth.grant.revoke``, saying who did it (``by``: ``admin`` or ``user``).
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field

from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import OAuthGrantNotFound, UserNotFound
from agnes_mcp.services import Services
from agnes_mcp.store.oauth import OAuthGrant

GrantStatus = Literal["active", "revoked"]


class OAuthGrantInfo(OAuthGrant):
    """A grant as shown to people: with its user's e-mail and its status."""

    user_email: str | None
    status: GrantStatus


class OAuthGrantRevocation(OAuthGrantInfo):
    """A grant after a revoke: the same fields, and whether this call revoked it."""

    already_revoked: bool = Field(
        default=False,
        description="It had been revoked before this call (revoked_at and revoked_why say "
        "when and why): nothing changed.",
    )


def _info(grant: OAuthGrant, email: str | None) -> OAuthGrantInfo:
    return OAuthGrantInfo(
        **grant.model_dump(),
        user_email=email,
        status="active" if grant.revoked_at is None else "revoked",
    )


def _email_of(services: Services, user_id: str) -> str | None:
    try:
        return services.users.get(user_id).email
    except UserNotFound:
        return None


def list_grants(
    services: Services, actor: Principal, user: str | None = None, *, active_only: bool = False
) -> list[OAuthGrantInfo]:
    """Every user's grants (admins only), or one user's (``user``: id or e-mail), newest
    first; ``active_only`` leaves out revoked ones."""
    services.access.require_admin(actor)  # before any lookup: nothing to enumerate
    user_id = services.users.find(user.strip()).id if user else None
    emails = {u.id: u.email for u in services.users.all()}
    grants = services.oauth.grants(user_id=user_id, active_only=active_only)
    return [_info(g, emails.get(g.user_id)) for g in grants]


def own_grants(services: Services, actor: Principal) -> list[OAuthGrantInfo]:
    """The actor's own grants, newest first (for ``/me``)."""
    grants = services.oauth.grants(user_id=actor.user_id)
    return [_info(g, actor.email) for g in grants]


def revoke_as_admin(services: Services, actor: Principal, grant_id: str) -> OAuthGrantRevocation:
    """Revoke anyone's grant (admins only); revoking a revoked grant changes nothing and
    says so (``already_revoked``)."""
    started = time.perf_counter()
    services.access.require_admin(actor)
    grant = services.oauth.grant(grant_id)
    revoked, changed = services.oauth.revoke_grant_once(
        grant.id, f"revoked by the admin {actor.email}"
    )
    return _revocation(services, actor, revoked, changed, "admin", started)


def revoke_own(services: Services, actor: Principal, grant_id: str) -> OAuthGrantRevocation:
    """Revoke one of the actor's own grants; anyone else's (admins' included) raises
    :class:`OAuthGrantNotFound`, exactly as a grant that does not exist."""
    started = time.perf_counter()
    try:
        grant = services.oauth.grant(grant_id)
    except OAuthGrantNotFound:
        grant = None
    if grant is None or grant.user_id != actor.user_id:
        raise OAuthGrantNotFound(
            f"You have no OAuth grant with id '{grant_id}'.",
            hint="Your connected applications are listed on /me.",
        )
    revoked, changed = services.oauth.revoke_grant_once(grant.id, "revoked by its user")
    return _revocation(services, actor, revoked, changed, "user", started)


def _revocation(
    services: Services,
    actor: Principal,
    grant: OAuthGrant,
    changed: bool,
    by: str,
    started: float,
) -> OAuthGrantRevocation:
    """The answer to a revoke; audited only when it changed something."""
    if changed:
        _audit(services, actor, grant, by, started)
    info = _info(grant, _email_of(services, grant.user_id))
    return OAuthGrantRevocation(**info.model_dump(), already_revoked=not changed)


def _audit(
    services: Services, actor: Principal, grant: OAuthGrant, by: str, started: float
) -> None:
    services.audit.record(
        actor,
        "oauth.grant.revoke",
        resource=grant.id,
        params={"by": by, "user": grant.user_id, "client": grant.client_name},
        started=started,
    )
