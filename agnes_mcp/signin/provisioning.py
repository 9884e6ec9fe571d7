"""Turning a verified identity into a user: found by e-mail, or created at first sign-in
(active, in Everyone). Blocking (the system store): call it off the event loop."""

from __future__ import annotations

from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import InvalidRequest, UserExists, UserInactive
from agnes_mcp.services import Services
from agnes_mcp.signin.identity import Identity
from agnes_mcp.signin.problems import SignInRefused
from agnes_mcp.store.users import User


def principal_of(user: User) -> Principal:
    """The user as an audit-log actor (no groups, no scopes: it authorises nothing)."""
    return Principal(
        user_id=user.id, email=user.email, name=user.name, group_ids=frozenset(), scopes=frozenset()
    )


def user_for(services: Services, identity: Identity) -> User:
    """The user signing in; a deactivated one raises :class:`UserInactive`."""
    user = services.users.by_email(identity.email)
    if user is None:
        try:
            user = services.users.add(identity.email, identity.name, added_by=None)
        except UserExists:  # a simultaneous first sign-in created it
            user = services.users.by_email(identity.email)
        except InvalidRequest:
            raise SignInRefused(
                f"The address {identity.email[:254]} cannot be used as an Agnes account."
            ) from None
        else:
            services.audit.record(
                principal_of(user), "user.create", resource=user.id, params={"via": "oidc"}
            )
        if user is None:  # pragma: no cover - deleted between the two statements
            raise SignInRefused("The account could not be created; try again.")
    if not user.active:
        raise UserInactive(f"The account {user.email} is deactivated.")
    return user
