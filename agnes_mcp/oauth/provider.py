"""Agnes as the OAuth 2.1 authorization server of its own ``/mcp`` (fastmcp's ``OAuthProvider``).

This class is fastmcp's :class:`~fastmcp.server.auth.OAuthProvider` (the MCP SDK's
``OAuthAuthorizationServerProvider`` protocol), so the SDK's handlers do the protocol work:
request parsing, PKCE ``S256`` only, redirect URI matching, error shapes. What is Agnes's
own: storage in the system DuckDB (hashes only), consent through the signed-in web
session, refresh-token rotation with family revocation. Bearer tokens at ``/mcp`` are
verified by :class:`~agnes_mcp.auth.bearer.BearerAuth` (personal and OAuth access tokens
alike), not here.

The routes are not the ones ``get_routes()`` would build: those bake the issuer into the
metadata at start-up, while Agnes answers with the URL the client used (or
``public_url``); :mod:`agnes_mcp.oauth.routes` mounts the same SDK handlers on the host app.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastmcp.server.auth import AccessToken, OAuthProvider
from mcp.server.auth.provider import (
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    TokenError,
)
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import AuthenticationError
from agnes_mcp.oauth.clients import (
    check_registration,
    default_if_blank,
    display_name,
    from_record,
    to_record,
)
from agnes_mcp.oauth.pending import (
    CODE_SECONDS,
    REQUEST_SECONDS,
    IssuedCode,
    PendingAuthorization,
    PendingStore,
)
from agnes_mcp.oauth.request_base import mcp_resource, request_base_var
from agnes_mcp.oauth.token_service import (
    OAUTH_SCOPES,
    REFRESH_PATTERN,
    IssuedTokens,
    normalize_resource,
)
from agnes_mcp.services import Services
from agnes_mcp.store.ids import utcnow

CONSENT_PATH = "/oauth/consent"
UNUSED_CLIENT_DAYS = 30  # a registered client no sign-in used is forgotten after this


class AgnesCode(AuthorizationCode):
    client_name: str
    user_id: str


class AgnesRefreshToken(RefreshToken):
    grant_id: str
    # Set for a refresh token whose grant was revoked (a replay ends it too): the token
    # endpoint then says so, not that the token does not exist.
    revoked_why: str | None = None


class AgnesAccessToken(AccessToken):
    grant_id: str | None = None


def _oauth_token(issued: IssuedTokens) -> OAuthToken:
    return OAuthToken(
        access_token=issued.access_token,
        token_type="Bearer",  # noqa: S106 - the token type's name, not a secret
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=" ".join(issued.scopes),
    )


class AgnesAuthorizationServer(OAuthProvider):
    def __init__(self, services: Services, pending: PendingStore | None = None) -> None:
        super().__init__(
            base_url=services.settings.base_url,
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=list(OAUTH_SCOPES), default_scopes=list(OAUTH_SCOPES)
            ),
            revocation_options=RevocationOptions(enabled=True),
        )
        self.services = services
        self.pending = pending or PendingStore()

    # --- fastmcp: routes ---------------------------------------------------------------

    def get_routes(self, mcp_path: str | None = None) -> list[Route]:
        return []  # served by agnes_mcp.oauth.routes on the host app, at the root

    # --- clients ------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        record = await run_in_threadpool(self.services.oauth_store.client, client_id)
        return from_record(record) if record is not None else None

    def secret_hash_of(self, client_id: str) -> str | None:
        record = self.services.oauth_store.client(client_id)
        return record.secret_hash if record is not None else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        check_registration(client_info)
        client_info.scope = default_if_blank(client_info.scope)  # the answer says it too
        record = to_record(client_info, client_ip_var.get())
        store = self.services.oauth_store
        await run_in_threadpool(store.add_client, record)
        # Registering writes anyway: clients never used for UNUSED_CLIENT_DAYS go now.
        await run_in_threadpool(
            store.purge_unused_clients, utcnow() - timedelta(days=UNUSED_CLIENT_DAYS)
        )
        self.services.audit.record(
            None,
            "oauth.client.register",
            resource=record.client_id,
            params={"client_name": record.client_name, "redirect_uris": record.redirect_uris},
        )

    # --- authorization ------------------------------------------------------------------

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        base = request_base_var.get() or self.services.settings.base_url
        expected = mcp_resource(base)
        resource = normalize_resource(params.resource) if params.resource else expected
        if resource != expected:
            raise AuthorizeError(
                "invalid_target",
                f"This server issues tokens for {expected} only, not {params.resource}.",
            )
        pending = PendingAuthorization(
            id=self.pending.new_request_id(),
            client_id=client.client_id or "",
            client_name=display_name(client),
            redirect_uri=str(params.redirect_uri),
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            state=params.state,
            scopes=params.scopes or list(OAUTH_SCOPES),
            code_challenge=params.code_challenge,
            resource=resource,
            issuer=base,
            expires_at=time.time() + REQUEST_SECONDS,
        )
        self.pending.add_request(pending)
        return f"{base}{CONSENT_PATH}?request={pending.id}"

    def issue_code(self, request: PendingAuthorization, user_id: str) -> str:
        """The consent was given: a single-use code for the client's redirect."""
        return self.pending.add_code(
            IssuedCode(
                client_id=request.client_id,
                client_name=request.client_name,
                user_id=user_id,
                redirect_uri=request.redirect_uri,
                redirect_uri_provided_explicitly=request.redirect_uri_provided_explicitly,
                scopes=request.scopes,
                code_challenge=request.code_challenge,
                resource=request.resource,
                expires_at=time.time() + CODE_SECONDS,
            )
        )

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AgnesCode | None:
        code = self.pending.code(authorization_code)
        if code is None:
            return None
        if code.used:
            # A replayed code: whoever holds it may be an attacker; end what it produced.
            if code.used_by_grant is not None:
                await run_in_threadpool(
                    self.services.oauth.revoke_replayed,
                    code.used_by_grant,
                    "its authorization code was used twice",
                )
            return None
        return AgnesCode(
            code=authorization_code,
            scopes=code.scopes,
            expires_at=code.expires_at,
            client_id=code.client_id,
            code_challenge=code.code_challenge,
            redirect_uri=code.redirect_uri,  # type: ignore[arg-type]
            redirect_uri_provided_explicitly=code.redirect_uri_provided_explicitly,
            resource=code.resource,
            subject=code.user_id,
            client_name=code.client_name,
            user_id=code.user_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        assert isinstance(authorization_code, AgnesCode)
        if not self.pending.mark_used(authorization_code.code, None):
            raise TokenError("invalid_grant", "The authorization code was already used.")
        try:
            issued = await run_in_threadpool(
                self.services.oauth.start_grant,
                user_id=authorization_code.user_id,
                client_id=authorization_code.client_id,
                client_name=authorization_code.client_name,
                scopes=authorization_code.scopes,
                resource=authorization_code.resource or "",
            )
        except AuthenticationError as exc:
            raise TokenError("invalid_grant", exc.message) from None
        self.pending.set_grant(authorization_code.code, issued.grant.id)
        self._audit(issued, "oauth.token.issue")
        return _oauth_token(issued)

    # --- refresh ------------------------------------------------------------------------

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> AgnesRefreshToken | None:
        lookup = await run_in_threadpool(self.services.oauth.find_refresh, refresh_token)
        if lookup is None:
            return await run_in_threadpool(self._revoked_refresh, refresh_token)
        return AgnesRefreshToken(
            token=refresh_token,
            client_id=lookup.grant.client_id,
            scopes=lookup.grant.scopes,
            expires_at=int(lookup.record.expires_at.timestamp()),
            resource=lookup.grant.resource,
            subject=lookup.grant.user_id,
            grant_id=lookup.grant.id,
        )

    def _revoked_refresh(self, raw: str) -> AgnesRefreshToken | None:
        """A refresh token of a grant that was revoked (by its user, an admin, or a replay
        of the token), as a token the endpoint refuses saying why; None for any other."""
        if not REFRESH_PATTERN.match(raw.strip()):
            return None
        grant = self.services.oauth.grant_of(raw)
        if grant is None or grant.revoked_at is None:
            return None
        return AgnesRefreshToken(
            token=raw,
            client_id=grant.client_id,
            scopes=grant.scopes,
            expires_at=None,
            resource=grant.resource,
            subject=grant.user_id,
            grant_id=grant.id,
            revoked_why=grant.revoked_why or "revoked",
        )

    async def exchange_refresh_token(
        self,
        client: OAuthClientInformationFull,
        refresh_token: RefreshToken,
        scopes: list[str],
    ) -> OAuthToken:
        why = getattr(refresh_token, "revoked_why", None)
        if why is not None:
            raise TokenError(
                "invalid_grant",
                f"The OAuth grant of this refresh token was revoked ({why}); sign in again.",
            )

        def rotate() -> IssuedTokens:
            lookup = self.services.oauth.find_refresh(refresh_token.token)
            if lookup is None:
                raise TokenError("invalid_grant", "refresh token does not exist")
            return self.services.oauth.rotate(lookup)

        try:
            issued = await run_in_threadpool(rotate)
        except AuthenticationError as exc:
            raise TokenError("invalid_grant", exc.message) from None
        self._audit(issued, "oauth.token.refresh")
        return _oauth_token(issued)

    # --- revocation (RFC 7009) ----------------------------------------------------------

    async def load_access_token(self, token: str) -> AgnesAccessToken | None:
        grant = await run_in_threadpool(self.services.oauth.grant_of, token)
        if grant is None:
            return None
        return AgnesAccessToken(
            token=token,
            client_id=grant.client_id,
            scopes=grant.scopes,
            resource=grant.resource,
            subject=grant.user_id,
            grant_id=grant.id,
        )

    async def revoke_token(self, token: Any) -> None:
        grant_id = getattr(token, "grant_id", None)
        if grant_id is None:
            return
        grant = await run_in_threadpool(
            self.services.oauth.revoke_grant, grant_id, "revoked by the client (RFC 7009)"
        )
        self.services.audit.record(
            None,
            "oauth.grant.revoke",
            resource=grant.id,
            params={"by": "client"},
            user_id=grant.user_id,
            client=grant.client_name,
        )

    def _audit(self, issued: IssuedTokens, action: str) -> None:
        grant = issued.grant
        self.services.audit.record(
            None, action, resource=grant.id, user_id=grant.user_id, client=grant.client_name
        )
