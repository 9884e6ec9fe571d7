"""Personal access tokens: users manage their own, admins anyone's."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.schemas import PlainText, RequestBody
from agnes_mcp.auth.principal import Principal, TokenScope
from agnes_mcp.errors import AdminRequired, TokenNotFound
from agnes_mcp.services import Services
from agnes_mcp.store.tokens import TokenInfo

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenCreate(RequestBody):
    name: PlainText = Field(min_length=1, max_length=100, description="What the token is for.")
    user: str | None = Field(default=None, description="Id or e-mail (admins only; default: you).")
    scopes: list[TokenScope] = Field(default_factory=lambda: [TokenScope.DATA])
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenCreated(BaseModel):
    token: str = Field(description="The token itself. Shown once; store it now.")
    info: TokenInfo


class TokenList(BaseModel):
    tokens: list[TokenInfo]


def _visible(services: Services, principal: Principal, token_id: str) -> TokenInfo:
    info = services.token_store.get(token_id).info
    if info.user_id != principal.user_id and not principal.is_admin:
        raise TokenNotFound(f"No token with id '{token_id}'.")  # do not reveal others' tokens
    return info


def _names_self(principal: Principal, ref: str | None) -> bool:
    """Whether ``ref`` (id or e-mail) is the caller, decided without any lookup."""
    return ref is None or ref == principal.user_id or ref.strip().lower() == principal.email


@router.get("", summary="List tokens (yours; admins: anyone's)")
def list_tokens(
    services: ServicesDep, principal: PrincipalDep, user: str | None = None, all: bool = False
) -> TokenList:
    if all or not _names_self(principal, user):
        services.access.require_admin(principal)  # before any lookup: nothing to enumerate
        user_id = services.users.find(user).id if user else None
        return TokenList(tokens=services.token_store.all(user_id=user_id))
    return TokenList(tokens=services.token_store.all(user_id=principal.user_id))


@router.post("", status_code=201, summary="Create a token (the raw value is returned once)")
def create_token(body: TokenCreate, services: ServicesDep, principal: PrincipalDep) -> TokenCreated:
    if not _names_self(principal, body.user):
        services.access.require_admin(principal)  # before any lookup: nothing to enumerate
    if TokenScope.ADMIN in body.scopes and not principal.is_admin:
        raise AdminRequired("Only admins may create tokens with the 'admin' scope.")
    owner = services.users.find(body.user) if body.user else services.users.get(principal.user_id)
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    info, raw = services.tokens.create(owner.id, body.name, [s.value for s in body.scopes], expires)
    services.audit.record(principal, "token.create", resource=info.id, params={"user": owner.id})
    return TokenCreated(token=raw, info=info)


@router.delete("/{token_id}", summary="Revoke a token")
def revoke_token(token_id: str, services: ServicesDep, principal: PrincipalDep) -> TokenInfo:
    _visible(services, principal, token_id)
    info = services.tokens.revoke(token_id)
    services.audit.record(principal, "token.revoke", resource=token_id)
    return info
