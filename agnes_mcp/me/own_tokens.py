"""A signed-in person's own tokens, created and revoked through the functions the REST
API's token routes call (``agnes_mcp.access_admin``), so the rules and the audit log
entries (``token.create``, ``token.revoke``) are the same.

Unlike the API, ``/me`` acts only on the person's own tokens, admins included: another
user's token id is answered like one that does not exist, and nothing changes.
"""

from __future__ import annotations

from agnes_mcp import access_admin
from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import InvalidRequest, PermissionDenied, TokenNotFound
from agnes_mcp.me.token_form import TokenForm
from agnes_mcp.services import Services
from agnes_mcp.store.tokens import TokenInfo

# The service's field names -> the form's (the admin checkbox stands for the scopes).
_FIELDS = {"name": "name", "expires_in_days": "expires_in_days", "scopes": "admin"}


def create_own(
    services: Services, principal: Principal, form: TokenForm
) -> tuple[TokenInfo, str] | None:
    """Mint a token for the signed-in person; ``None`` when the form has problems (then
    :attr:`TokenForm.errors` says which and nothing is created)."""
    checked = form.check(principal)
    if checked is None:
        return None
    name, scopes, days = checked
    try:
        return access_admin.create_token(
            services, principal, name, scopes=scopes, expires_in_days=days
        )
    except (InvalidRequest, PermissionDenied) as exc:  # a rule the form does not know yet
        fallback = "admin" if isinstance(exc, PermissionDenied) else "name"
        fields = exc.details.get("fields") or [{"field": fallback, "problem": exc.message}]
        form.errors = {_FIELDS.get(f["field"], fallback): f["problem"] for f in fields}
        return None


def revoke_own(
    services: Services, principal: Principal, token_id: str
) -> access_admin.TokenRevocation:
    """Revoke one of the person's own tokens (:class:`TokenNotFound` for anyone else's)."""
    if services.token_store.get(token_id).info.user_id != principal.user_id:
        raise TokenNotFound(f"No token with id '{token_id}'.")
    return access_admin.revoke_token(services, principal, token_id)
