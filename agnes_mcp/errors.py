"""The server's errors, all under the one root :class:`AgnesError`.

The root lives in :mod:`agnes_sync.errors` (the lowest layer, so the engine and the
connectors share it). Each subclass carries a stable ``code`` (clients branch on it),
an HTTP ``status`` and a user-facing message with a ``hint`` that says what to do next. Errors are
mapped to HTTP responses in one place (:mod:`agnes_mcp.api.error_handlers`) and to
MCP tool errors in one place (:mod:`agnes_mcp.mcp_server.errors`); the text of an
unexpected exception never reaches a client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agnes_sync.errors import AgnesError

# --- configuration ---------------------------------------------------------------


class ConfigError(AgnesError):
    """Settings could not be loaded: names the file (or env var), the key and a fix."""

    code = "config_invalid"
    status = 500


class BindError(AgnesError):
    """The server cannot listen on the configured host and port."""

    code = "bind_failed"


# --- system store ----------------------------------------------------------------


class SystemStoreError(AgnesError):
    """The system DuckDB cannot be used."""

    code = "system_store_unavailable"
    status = 503


class SystemStoreLocked(SystemStoreError):
    code = "system_store_locked"


class SystemStoreCorrupt(SystemStoreError):
    code = "system_store_corrupt"


class SystemStoreTooNew(SystemStoreError):
    code = "system_store_too_new"


# --- authentication and authorization ----------------------------------------------


class AuthenticationError(AgnesError):
    """No usable credentials: answered with 401 and ``WWW-Authenticate: Bearer``."""

    code = "unauthenticated"
    status = 401
    default_hint = (
        "Send 'Authorization: Bearer <token>'; create a token with 'agnes admin token create'."
    )


class TokenInvalid(AuthenticationError):
    code = "token_invalid"


class TokenExpired(AuthenticationError):
    code = "token_expired"
    default_hint = "Ask an admin for a new token: 'agnes admin token create --user EMAIL'."


class TokenRevoked(AuthenticationError):
    code = "token_revoked"
    default_hint = "This token was revoked; ask an admin for a new one."


class TokenWrongResource(AuthenticationError):
    code = "token_wrong_resource"
    default_hint = (
        "This OAuth token was issued for another resource (RFC 8707); connect your MCP "
        "client to this server's /mcp URL and sign in again."
    )


class UserInactive(AuthenticationError):
    code = "user_inactive"
    default_hint = "The account is deactivated; ask an admin to reactivate it."


class SessionInvalid(AuthenticationError):
    code = "session_invalid"
    default_hint = "Sign in again at /auth/login."


class SessionExpired(AuthenticationError):
    code = "session_expired"
    default_hint = "The session was idle too long or was signed out; sign in again at /auth/login."


class PermissionDenied(AgnesError):
    code = "permission_denied"
    status = 403


class CsrfFailed(PermissionDenied):
    code = "csrf_failed"
    default_hint = "Reload the page and submit the form again."


class AdminRequired(PermissionDenied):
    code = "admin_required"
    default_hint = (
        "Only members of the Admin group, using a token with the 'admin' scope, may do this."
    )


class ResourceNotGranted(PermissionDenied):
    code = "resource_not_granted"
    default_hint = "Ask an admin to grant one of your groups access: 'agnes admin grant create'."


# --- requests -------------------------------------------------------------------


REQUEST_SCHEMA_HINT = "See the request schema at /api/docs."


class InvalidRequest(AgnesError):
    code = "invalid_request"
    status = 422

    @classmethod
    def of_fields(cls, errors: Sequence[Mapping[str, Any]]) -> InvalidRequest:
        """The refusal naming each field pydantic found wrong (``errors()`` of a
        validation error, of the request or of a model built from it)."""
        problems: list[dict[str, str]] = []
        for err in errors:
            loc = tuple(err.get("loc", ()))
            parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
            field = ".".join(parts) or str(loc[0] if loc else "body")
            kind = err.get("type")
            if kind == "extra_forbidden":
                problem = "unknown field"
            elif kind == "missing":
                problem = "field required"
            else:
                problem = str(err.get("msg", "invalid value"))
            problems.append({"field": field, "problem": problem})
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return cls(
            f"Invalid request: {summary}.",
            hint=REQUEST_SCHEMA_HINT,
            details={"fields": problems},
        )


class MalformedJSON(AgnesError):
    code = "malformed_json"
    status = 400
    default_hint = "Send a valid JSON object with 'Content-Type: application/json'."


class PayloadTooLarge(AgnesError):
    code = "payload_too_large"
    status = 413


class RequestTimeout(AgnesError):
    code = "request_timeout"
    status = 408


class HostNotAllowed(AgnesError):
    code = "host_not_allowed"
    status = 421
    default_hint = "Add the host to 'allowed_hosts' (AGNES_ALLOWED_HOSTS) if it is legitimate."


class OriginNotAllowed(AgnesError):
    code = "origin_not_allowed"
    status = 403
    default_hint = (
        "Add the origin to 'allowed_origins' (AGNES_ALLOWED_ORIGINS) if it is legitimate."
    )


class HeaderRepeated(AgnesError):
    code = "header_repeated"
    status = 400
    default_hint = "Send each of Host, Origin and Authorization once."


class NotFound(AgnesError):
    code = "not_found"
    status = 404


class Conflict(AgnesError):
    code = "conflict"
    status = 409


class RouteNotFound(NotFound):
    code = "route_not_found"
    default_hint = "See the API reference at /api/docs (OpenAPI: /api/openapi.json)."


class InternalError(AgnesError):
    code = "internal_error"
    status = 500
    default_hint = "The server log holds the details under the incident id."


class HTTPStatusError(AgnesError):
    """Any other status the web framework raises; code ``http_<status>``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, hint="See the API reference at /api/docs.")
        self.status = status
        self.code = f"http_{status}"


class MethodNotAllowed(AgnesError):
    code = "method_not_allowed"
    status = 405
    default_hint = "See the allowed methods at /api/docs."


class NotAcceptable(AgnesError):
    """The request's ``Accept`` header admits none of the media types the route answers in."""

    code = "not_acceptable"
    status = 406


# --- domain lookups ---------------------------------------------------------------


class UserNotFound(NotFound):
    code = "user_not_found"
    default_hint = "List users with 'agnes admin user list'."


class UserExists(Conflict):
    code = "user_exists"


class GroupNotFound(NotFound):
    code = "group_not_found"
    default_hint = "List groups with 'agnes admin group list'."


class GroupExists(Conflict):
    code = "group_exists"


class SystemGroupImmutable(Conflict):
    code = "system_group_immutable"
    default_hint = "The Admin and Everyone groups are built in and cannot be changed this way."


class LastAdmin(Conflict):
    code = "last_admin"
    default_hint = "Make another user an admin first: 'agnes admin group add-member Admin EMAIL'."


class MembershipNotFound(NotFound):
    code = "membership_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"
    default_hint = "List tokens with 'agnes admin token list'."


class OAuthGrantNotFound(NotFound):
    code = "oauth_grant_not_found"
    default_hint = "List OAuth grants with 'agnes admin oauth list --user EMAIL'."


class GrantNotFound(NotFound):
    code = "grant_not_found"
    default_hint = "List grants with 'agnes admin grant list'."


class GrantExists(Conflict):
    code = "grant_exists"
    default_hint = "List the group's grants with 'agnes admin grant list --group GROUP'."


class UnknownResourceType(InvalidRequest):
    code = "unknown_resource_type"


class ResourceNotFound(NotFound):
    code = "resource_not_found"


class TableNotRegistered(NotFound):
    code = "table_not_registered"
    default_hint = "List registered tables with 'agnes admin list-tables'."


class TableExists(Conflict):
    code = "table_exists"


# --- plugin marketplaces -----------------------------------------------------------


class MarketplaceNotFound(NotFound):
    code = "marketplace_not_found"
    default_hint = "List the registered marketplaces: 'agnes admin marketplace list'."


class MarketplaceExists(Conflict):
    code = "marketplace_exists"


class MarketplaceUrlRefused(InvalidRequest):
    """A repository URL this server will not fetch (scheme, host, credentials in it)."""

    code = "marketplace_url_refused"


class MarketplaceTokenEnvRefused(InvalidRequest):
    """A read-token variable the operator has not listed in ``marketplace.token_envs``."""

    code = "marketplace_token_env_refused"


class MarketplaceRepoInvalid(InvalidRequest):
    """The repository breaks the marketplace format or a safety rule; names the file."""

    code = "marketplace_repo_invalid"
    commit: str | None = None  # the refused commit, recorded as the sync's last_sync_commit


class MarketplaceFetchFailed(AgnesError):
    """git could not fetch the repository (network, auth, unknown ref, timeout)."""

    code = "marketplace_fetch_failed"
    status = 502


class MarketplaceFeedChanged(AgnesError):
    """A plugin of the feed was replaced by a sync while the feed was being built."""

    code = "marketplace_feed_changed"
    status = 503
    default_hint = "Ask again: the marketplace was synced a moment ago."


class TooManyGitRequests(AgnesError):
    code = "too_many_git_requests"
    status = 429
    default_hint = "Fetch again in a few seconds (Retry-After says when)."


class GitPushRefused(PermissionDenied):
    code = "git_push_refused"
    default_hint = (
        "The marketplace is read-only: admins change plugins in the upstream repositories."
    )
