"""Why a group sync did not happen: typed errors whose messages name the endpoint and the
HTTP status, never the service account's key or an access token."""

from __future__ import annotations

from agnes_sync.errors import AgnesError


class GroupSyncError(AgnesError):
    """Reading a user's groups from the Directory API failed; memberships were kept."""

    code = "group_sync_failed"
    status = 502
    default_hint = (
        "The previous groups were kept. Check the service account's domain-wide delegation "
        "and auth.google_groups.* settings; see docs/group-sync.md."
    )


class DirectoryUnavailable(GroupSyncError):
    """A timeout, a refused connection, 429 or 5xx that outlived the retries."""

    code = "directory_unavailable"
    default_hint = "The previous groups were kept; the next sync tries again."


class DirectoryRefused(GroupSyncError):
    """The Directory API answered with a status that retrying will not change (4xx)."""

    code = "directory_refused"


class DirectoryResponseInvalid(GroupSyncError):
    """The Directory API or the token endpoint answered something that is not its format."""

    code = "directory_response_invalid"


class GoogleTokenRefused(GroupSyncError):
    """The token endpoint would not exchange the service account's assertion for a token."""

    code = "google_token_refused"
    default_hint = (
        "Check that the service account has domain-wide delegation for the scope "
        "admin.directory.group.readonly and that auth.google_groups.delegated_admin is a "
        "Workspace admin. The previous groups were kept."
    )


class GroupSyncDisabled(AgnesError):
    code = "group_sync_disabled"
    status = 409
    default_hint = (
        "Set auth.google_groups.credentials_env to the name of an environment variable "
        "holding the service account's JSON key; see docs/group-sync.md."
    )


class GroupRefreshTooSoon(AgnesError):
    code = "group_refresh_too_soon"
    status = 429
    default_hint = "Wait a little and try again."
