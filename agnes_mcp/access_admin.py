"""Who may do what: users, groups, memberships, grants and tokens, managed.

One implementation for the admin REST routes (``/api/admin/users``, ``/groups``,
``/grants``, ``/api/tokens``) and the admin app's Access and Tokens pages. Every change
takes the acting principal, checks it, validates all input before the first write, and
writes one audit row naming the actor. Problems with an input carry
``details={"fields": [{"field": ..., "problem": ...}]}`` (the shape the API uses for a
bad request body), so a form can show each one beside its field.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.bootstrap_admin import usable_admin_token_ids
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID
from agnes_mcp.errors import (
    AdminRequired,
    Conflict,
    InvalidRequest,
    LastAdmin,
    MembershipNotFound,
    NotFound,
    TokenNotFound,
)
from agnes_mcp.resource_types import ResourceType, all_specs, parse_resource_type, spec_for
from agnes_mcp.services import Services
from agnes_mcp.store.grants import Grant
from agnes_mcp.store.groups import Group, Membership, MembershipSource
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.tokens import TokenInfo
from agnes_mcp.store.users import User, normalise_email

MAX_USER_NAME = 200
MAX_DESCRIPTION = 500
MAX_RESOURCE_ID = 200
MAX_TOKEN_DAYS = 3650


# --- read models ------------------------------------------------------------------------


class UserWithGroups(User):
    groups: list[str]
    last_seen_at: datetime | None = Field(
        default=None,
        description="The latest of the user's web sessions' last use, their tokens' and "
        "OAuth grants' last use and their last pull (flushed every few seconds); "
        "null when never seen.",
    )


class UserMembership(BaseModel):
    group_id: str
    group_name: str
    source: MembershipSource


class UserAccess(BaseModel):
    """A user with every membership row (one per group and writer)."""

    user: User
    memberships: list[UserMembership]
    last_seen_at: datetime | None = None  # as :attr:`UserWithGroups.last_seen_at`


class GroupMembers(BaseModel):
    group: Group
    members: list[Membership]


class GrantKind(BaseModel):
    resource_type: ResourceType
    label: str
    grants: list[Grant]


class GrantBranch(BaseModel):
    """One group of the grant tree: group → resource type → resources."""

    group: Group
    kinds: list[GrantKind]


# --- input checks -----------------------------------------------------------------------


@contextmanager
def about(field: str) -> Iterator[None]:
    """Tag an input error (bad, missing or clashing value) raised inside with the field
    it is about."""
    try:
        yield
    except (InvalidRequest, NotFound, Conflict) as exc:
        if "fields" not in exc.details:
            exc.details["fields"] = [{"field": field, "problem": exc.message}]
        raise


def _field_error(field: str, message: str, hint: str | None = None) -> InvalidRequest:
    return InvalidRequest(
        message, hint=hint, details={"fields": [{"field": field, "problem": message}]}
    )


def _plain(field: str, value: str, max_length: int, *, required: bool = False) -> str:
    """Stripped text without control or invisible formatting characters."""
    cleaned = value.strip()
    if required and not cleaned:
        raise _field_error(field, f"The {field} is required.")
    if len(cleaned) > max_length:
        raise _field_error(field, f"The {field} is longer than {max_length} characters.")
    for char in cleaned:
        if unicodedata.category(char) in ("Cc", "Cf") and char != "\t":
            raise _field_error(
                field, f"The {field} contains the control character U+{ord(char):04X}."
            )
    return cleaned


# --- users ------------------------------------------------------------------------------


def user_with_groups(services: Services, user: User) -> UserWithGroups:
    names = services.groups.names()
    groups = sorted(names[g] for g in services.groups.group_ids_of(user.id) if g in names)
    seen = services.users.last_seen(user.id).get(user.id)
    return UserWithGroups(**user.model_dump(), groups=groups, last_seen_at=seen)


def users_with_groups(services: Services) -> list[UserWithGroups]:
    """Every user with their groups and last-seen time: a fixed number of reads, whatever
    the number of users (it read each user's groups one by one)."""
    names = services.groups.names()
    ids: dict[str, set[str]] = {}
    for member in services.groups.all_members():
        ids.setdefault(member.user_id, set()).add(member.group_id)
    seen = services.users.last_seen()
    return [
        UserWithGroups(
            **user.model_dump(),
            groups=sorted(
                names[g] for g in ids.get(user.id, set()) | {EVERYONE_GROUP_ID} if g in names
            ),
            last_seen_at=seen.get(user.id),
        )
        for user in services.users.all()
    ]


def user_access(services: Services) -> list[UserAccess]:
    """Every user with each membership and the writer that made it (admin, google_sync,
    system_seed)."""
    names = {group.id: group.name for group in services.groups.all()}
    rows: dict[str, list[UserMembership]] = {}
    for member in services.groups.all_members():  # one read, whatever the number of groups
        if member.group_id in names:
            rows.setdefault(member.user_id, []).append(
                UserMembership(
                    group_id=member.group_id,
                    group_name=names[member.group_id],
                    source=member.source,
                )
            )
    seen = services.users.last_seen()
    return [
        UserAccess(
            user=user,
            last_seen_at=seen.get(user.id),
            memberships=sorted(
                rows.get(user.id, []), key=lambda m: (m.group_name.lower(), m.source.value)
            ),
        )
        for user in services.users.all()
    ]


def add_user(
    services: Services,
    actor: Principal,
    email: str,
    name: str | None = None,
    groups: Sequence[str] = (),
) -> UserWithGroups:
    """Create a user in Everyone plus ``groups`` (names or ids): every input is checked
    and every group resolved before the user is written, under the store's write lock."""
    started = time.perf_counter()
    services.access.require_admin(actor)
    with about("email"):
        address = normalise_email(email)
    display = None if name is None else (_plain("name", name, MAX_USER_NAME) or None)
    with services.store.writing():
        with about("groups"):
            resolved = [services.groups.find(ref) for ref in groups]
        with about("email"):
            user = services.users.add(address, display, added_by=actor.user_id)
        for group in resolved:
            if group.id != EVERYONE_GROUP_ID:
                services.groups.add_member(
                    group.id, user.id, MembershipSource.ADMIN, added_by=actor.user_id
                )
    services.audit.record(
        actor,
        "user.add",
        resource=user.id,
        params={"email": user.email, "groups": [g.id for g in resolved]},
        started=started,
    )
    return user_with_groups(services, user)


def deactivate_user(services: Services, actor: Principal, ref: str) -> UserWithGroups:
    """Deactivate a user: their tokens stop working and their web sessions end."""
    services.access.require_admin(actor)
    with services.store.writing():  # the check and the change, no other write between
        target = services.users.find(ref)
        _refuse_admin_lockout(services, target.id, f"Deactivating {target.email}")
        user = services.users.set_active(target.id, False)
    services.web_sessions.sign_out_user(user.id)
    services.audit.record(actor, "user.deactivate", resource=user.id)
    return user_with_groups(services, user)


def activate_user(services: Services, actor: Principal, ref: str) -> UserWithGroups:
    services.access.require_admin(actor)
    user = services.users.set_active(services.users.find(ref).id, True)
    services.audit.record(actor, "user.activate", resource=user.id)
    return user_with_groups(services, user)


# --- groups and members -----------------------------------------------------------------


def groups_with_members(services: Services) -> list[GroupMembers]:
    members: dict[str, list[Membership]] = {}
    for member in services.groups.all_members():  # one read, whatever the number of groups
        members.setdefault(member.group_id, []).append(member)
    return [
        GroupMembers(group=group, members=members.get(group.id, []))
        for group in services.groups.all()
    ]


def create_group(services: Services, actor: Principal, name: str, description: str = "") -> Group:
    services.access.require_admin(actor)
    text = _plain("description", description, MAX_DESCRIPTION)
    with about("name"):
        group = services.groups.add(name, text)
    services.audit.record(actor, "group.create", resource=group.id, params={"name": group.name})
    return group


def delete_group(services: Services, actor: Principal, ref: str) -> Group:
    """Delete a group with its memberships and grants (never a built-in group)."""
    services.access.require_admin(actor)
    group = services.groups.find(ref)
    services.groups.delete(group.id)
    services.audit.record(actor, "group.delete", resource=group.id, params={"name": group.name})
    return group


def add_member(services: Services, actor: Principal, group_ref: str, user_ref: str) -> GroupMembers:
    """Add an admin-made membership (a no-op when it exists)."""
    services.access.require_admin(actor)
    with about("group"):
        group = services.groups.find(group_ref)
    with about("user"):
        user = services.users.find(user_ref)
    services.groups.add_member(group.id, user.id, MembershipSource.ADMIN, added_by=actor.user_id)
    services.audit.record(actor, "group.add_member", resource=group.id, params={"user": user.id})
    return GroupMembers(
        group=services.groups.get(group.id), members=services.groups.members(group.id)
    )


def remove_member(
    services: Services, actor: Principal, group_ref: str, user_ref: str
) -> GroupMembers:
    """Remove the admin-made membership only; rows group sync or the system made stay."""
    services.access.require_admin(actor)
    with about("group"):
        group = services.groups.find(group_ref)
    with about("user"):
        user = services.users.find(user_ref)
    try:
        with services.store.writing():  # the check and the removal, no other write between
            sources = {
                m.source
                for m in services.groups.members(group.id)
                if m.user_id == user.id and group.id == ADMIN_GROUP_ID
            }
            if sources == {MembershipSource.ADMIN}:  # they leave Admin, with their admin tokens
                _refuse_admin_lockout(services, user.id, f"Removing {user.email} from Admin")
            revoked = services.groups.remove_member(group.id, user.id, MembershipSource.ADMIN)
    except MembershipNotFound as exc:
        raise _no_admin_membership(user, group, exc.details.get("sources") or []) from None
    params: dict[str, Any] = {"user": user.id}
    if revoked:  # leaving Admin ended their admin-scoped tokens for good
        params["revoked_tokens"] = revoked
    services.audit.record(actor, "group.remove_member", resource=group.id, params=params)
    return GroupMembers(
        group=services.groups.get(group.id), members=services.groups.members(group.id)
    )


# Why a membership an admin did not make is there, and where it is changed instead.
_MADE_BY = {
    MembershipSource.GOOGLE_SYNC.value: (
        "Google group sync",
        "Remove them from the Google group; the next group sync removes them here.",
    ),
    MembershipSource.SYSTEM_SEED.value: (
        "the server, which made them its first admin",
        "Such a membership stays: make another user an admin, then deactivate this one "
        "if they should no longer act as one.",
    ),
}


def _no_admin_membership(user: User, group: Group, sources: Sequence[str]) -> MembershipNotFound:
    """The refusal named the user and group by ids and said only that there was no
    'admin' membership: not whether the user was in the group at all, nor who put them
    there."""
    if not sources:
        return MembershipNotFound(
            f"{user.email} is not a member of {group.name}.",
            hint=f"See its members with 'agnes admin group members {group.name}'.",
            details={"sources": []},
        )
    made_by = [_MADE_BY.get(source, (source, "")) for source in sources]
    return MembershipNotFound(
        f"{user.email} is in {group.name} through {' and '.join(who for who, _ in made_by)}, "
        "not by an admin: only memberships an admin made are removed here.",
        hint=" ".join(fix for _, fix in made_by if fix) or None,
        details={"sources": list(sources)},
    )


# --- grants -----------------------------------------------------------------------------


def grant_tree(services: Services) -> list[GrantBranch]:
    """Every group (Admin included, it needs no grants) → resource type → granted ids."""
    grants = services.grants.all()
    tree: list[GrantBranch] = []
    for group in services.groups.all():
        mine = [g for g in grants if g.group_id == group.id]
        kinds = [
            GrantKind(
                resource_type=spec.type,
                label=spec.label,
                grants=[g for g in mine if g.resource_type == spec.type],
            )
            for spec in all_specs()
        ]
        tree.append(GrantBranch(group=group, kinds=[k for k in kinds if k.grants]))
    return tree


def existing_resource_ids(services: Services, resource_type: ResourceType) -> list[str] | None:
    """The ids of ``resource_type`` that exist now (what a grant may name), from the same
    query the grant repository validates against; ``None`` when the kind cannot tell."""
    ids_sql = spec_for(resource_type).existing_ids_sql
    if ids_sql is None:
        return None
    with services.store.cursor() as cur:
        rows = cur.execute(f"SELECT DISTINCT id FROM ({ids_sql}) AS ids(id) ORDER BY id").fetchall()
    return [str(r[0]) for r in rows]


def list_grants(
    services: Services, group: str | None = None, resource_type: str | None = None
) -> list[Grant]:
    group_id = services.groups.find(group).id if group else None
    kind = parse_resource_type(resource_type) if resource_type else None
    return services.grants.all(group_id=group_id, resource_type=kind)


def add_grant(
    services: Services, actor: Principal, group_ref: str, resource_type: str, resource_id: str
) -> Grant:
    services.access.require_admin(actor)
    with about("group"):
        group = services.groups.find(group_ref)
    with about("resource_type"):
        kind = parse_resource_type(resource_type)
    rid = resource_id.strip()
    if not rid:
        raise _field_error("resource_id", "Choose the resource to grant.")
    _plain("resource_id", rid, MAX_RESOURCE_ID)
    with about("resource_id"):
        grant = services.grants.add(group.id, kind, rid, granted_by=actor.user_id)
    services.audit.record(
        actor,
        "grant.create",
        resource=grant.id,
        params={"group": group.id, "resource_type": kind.value, "resource_id": rid},
    )
    return grant


def remove_grant(services: Services, actor: Principal, grant_id: str) -> Grant:
    services.access.require_admin(actor)
    grant = services.grants.get(grant_id)
    services.grants.delete(grant_id)
    services.audit.record(
        actor,
        "grant.delete",
        resource=grant_id,
        params={
            "group": grant.group_id,
            "resource_type": grant.resource_type.value,
            "resource_id": grant.resource_id,
        },
    )
    return grant


# --- tokens -----------------------------------------------------------------------------


def names_self(actor: Principal, ref: str | None) -> bool:
    """Whether ``ref`` (id or e-mail) is the actor, decided without any lookup."""
    return ref is None or ref == actor.user_id or ref.strip().lower() == actor.email


def all_tokens(services: Services) -> list[TokenInfo]:
    """Every token of every user (for admins; the hash never leaves the store)."""
    return services.token_store.all()


def list_tokens(
    services: Services, actor: Principal, user: str | None = None, *, everyone: bool = False
) -> list[TokenInfo]:
    """The actor's tokens; an admin may list anyone's (``everyone`` or ``user``)."""
    if everyone or not names_self(actor, user):
        services.access.require_admin(actor)  # before any lookup: nothing to enumerate
        user_id = services.users.find(user).id if user else None
        return services.token_store.all(user_id=user_id)
    return services.token_store.all(user_id=actor.user_id)


def create_token(
    services: Services,
    actor: Principal,
    name: str,
    *,
    user: str | None = None,
    scopes: Sequence[str] = (TokenScope.DATA.value,),
    expires_in_days: int | None = None,
) -> tuple[TokenInfo, str]:
    """Mint a token for the actor, or (admins) for ``user``. The raw value is returned
    once and never stored or logged."""
    started = time.perf_counter()
    if not names_self(actor, user):
        services.access.require_admin(actor)  # before any lookup: nothing to enumerate
    wanted = sorted({s.strip().lower() for s in scopes})
    if not wanted:
        raise _field_error("scopes", "Choose at least one scope.")
    known = {s.value for s in TokenScope}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise _field_error(
            "scopes",
            f"Unknown token scope(s): {', '.join(unknown)}.",
            hint=f"Scopes: {', '.join(sorted(known))}.",
        )
    if TokenScope.ADMIN.value in wanted and not actor.is_admin:
        raise AdminRequired("Only admins may create tokens with the 'admin' scope.")
    label = _plain("name", name, 100, required=True)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise _field_error(
            "expires_in_days", f"The lifetime must be 1-{MAX_TOKEN_DAYS} days (or none)."
        )
    with about("user"):
        owner = services.users.find(user) if user else services.users.get(actor.user_id)
    if not owner.active:  # the server refuses its every call: a token that cannot work
        raise _field_error(
            "user",
            f"{owner.email} is deactivated: the server refuses every token of theirs.",
            hint=f"Reactivate them first (agnes admin user activate {owner.email}).",
        )
    if TokenScope.ADMIN.value in wanted and ADMIN_GROUP_ID not in services.groups.group_ids_of(
        owner.id
    ):  # it would lie dormant, and turn into an admin token the day they join Admin
        raise _field_error(
            "scopes",
            f"{owner.email} is not in the Admin group: a token of theirs cannot have the "
            "'admin' scope.",
            hint=f"Give them a 'data' token, or add {owner.email} to the Admin group first.",
        )
    expires = timedelta(days=expires_in_days) if expires_in_days else None
    _refuse_outliving(services, actor, expires)
    info, raw = services.tokens.create(owner.id, label, wanted, expires)
    services.audit.record(
        actor,
        "token.create",
        resource=info.id,
        params={"user": owner.id, "scopes": wanted},
        started=started,
    )
    return info, raw


def _refuse_outliving(services: Services, actor: Principal, expires: timedelta | None) -> None:
    """A token that expires (or a web session signed in with one) made tokens that never
    did: a leaked one-day token became a way in for good. One made by a non-admin acting
    with an expiring token ends no later than that token. Admins are not held to it (the
    bootstrap token, a day long, is how the first admin makes their own)."""
    if actor.token_id is None or actor.is_admin:
        return
    ends = services.tokens.expires_at(actor.token_id)
    if ends is None:
        return
    now = utcnow()
    if expires is not None and now + expires <= ends:
        return
    days = (ends - now).days
    room = (
        f"expires_in_days of at most {days}"
        if days >= 1
        else "none: it ends in less than a day; sign in another way (the /me page after "
        "single sign-on) or with a token that lasts longer"
    )
    raise _field_error(
        "expires_in_days",
        "A token may not outlive the token it is made with, which expires "
        f"{ends:%Y-%m-%d %H:%M} UTC.",
        hint=f"Ask for {room}.",
    )


class TokenRevocation(TokenInfo):
    """A token after a revoke: the same fields, and whether this call revoked it."""

    already_revoked: bool = Field(
        default=False,
        description="It had been revoked before this call (revoked_at says when): nothing changed.",
    )


def revoke_token(services: Services, actor: Principal, token_id: str) -> TokenRevocation:
    """Revoke the actor's token, or (admins) anyone's; others' tokens look missing. A token
    already revoked stays as it was (its revocation time), no second revocation is
    audited, and the answer says ``already_revoked`` (a page or the CLI said "Revoked"
    of a token someone else had revoked long before)."""
    info = services.token_store.get(token_id).info
    if info.user_id != actor.user_id and not actor.is_admin:
        raise TokenNotFound(f"No token with id '{token_id}'.")  # do not reveal others' tokens
    with services.store.writing():  # the check and the revoke, no other write between
        current = services.token_store.get(token_id).info
        if current.revoked_at is not None:  # revoked before (another page, the API)
            # as it was: nothing changed, nothing to audit
            return TokenRevocation(**current.model_dump(), already_revoked=True)
        if _admins_sign_in_with(services, info) == [info.id]:
            raise LastAdmin(
                "This is the last usable token with the admin scope held by an active admin, "
                "and the server has no OIDC sign-in: revoking it would lock admins out of the "
                "admin API and the admin app.",
                hint="Create another admin token first (agnes admin token create --scope admin "
                "--scope data, or the admin app's Tokens page), then revoke this one.",
            )
        revoked = services.tokens.revoke(token_id)
    services.audit.record(actor, "token.revoke", resource=token_id, params={"user": info.user_id})
    return TokenRevocation(**revoked.model_dump())


def _refuse_admin_lockout(services: Services, user_id: str, doing: str) -> None:
    """Refuse to take away ``user_id``'s admin-scoped tokens when they are the last usable
    ones of any active admin and the server has no OIDC sign-in: admins would be locked
    out of the admin API and the admin app (as revoking the last one is refused)."""
    if services.settings.auth.oidc.client_id:
        return
    usable = usable_admin_token_ids(services)
    theirs = {t.id for t in services.token_store.all(user_id=user_id)}
    if usable and set(usable) <= theirs:
        raise LastAdmin(
            f"{doing} would end the last usable tokens with the admin scope, and the server "
            "has no OIDC sign-in: admins would be locked out of the admin API and the admin "
            "app.",
            hint="Create an admin token for another admin first (agnes admin token create "
            "--user EMAIL --scope admin --scope data), then retry.",
        )


def _admins_sign_in_with(services: Services, info: TokenInfo) -> list[str] | None:
    """The usable admin-scoped tokens of active admins (ids), when ``info`` is one of them
    and admins cannot sign in another way (no OIDC); else None (nothing to guard)."""
    if TokenScope.ADMIN.value not in info.scopes or services.settings.auth.oidc.client_id:
        return None
    usable = usable_admin_token_ids(services)
    return usable if info.id in usable else None
