"""Personal access tokens: users manage their own, admins anyone's."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from agnes_mcp import access_admin
from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.schemas import PlainText, RequestBody
from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.store.tokens import TokenInfo

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenCreate(RequestBody):
    name: PlainText = Field(min_length=1, max_length=100, description="What the token is for.")
    # min_length: an empty user (a script's unset variable) made a token for the caller
    user: str | None = Field(
        default=None, min_length=1, description="Id or e-mail (admins only; default: you)."
    )
    scopes: list[TokenScope] = Field(default_factory=lambda: [TokenScope.DATA])
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenCreated(BaseModel):
    token: str = Field(description="The token itself. Shown once; store it now.")
    info: TokenInfo


class TokenList(BaseModel):
    tokens: list[TokenInfo]


@router.get("", summary="List tokens (yours; admins: anyone's)")
def list_tokens(
    services: ServicesDep, principal: PrincipalDep, user: str | None = None, all: bool = False
) -> TokenList:
    return TokenList(tokens=access_admin.list_tokens(services, principal, user, everyone=all))


@router.post("", status_code=201, summary="Create a token (the raw value is returned once)")
def create_token(
    body: TokenCreate, services: ServicesDep, principal: PrincipalDep, response: Response
) -> TokenCreated:
    # the answer holds the raw token: no cache on the way (or the browser's) may keep it,
    # as with OAuth's token answers (RFC 6749 5.1)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    info, raw = access_admin.create_token(
        services,
        principal,
        body.name,
        user=body.user,
        scopes=[s.value for s in body.scopes] or [TokenScope.DATA.value],
        expires_in_days=body.expires_in_days,
    )
    return TokenCreated(token=raw, info=info)


@router.delete("/{token_id}", summary="Revoke a token")
def revoke_token(
    token_id: str, services: ServicesDep, principal: PrincipalDep
) -> access_admin.TokenRevocation:
    return access_admin.revoke_token(services, principal, token_id)
