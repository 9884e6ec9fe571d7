"""Why a sign-in did not happen: refused (the person may not come in) or failed (the
provider could not be used). Both are shown on an HTML page, never as JSON."""

from __future__ import annotations

from agnes_mcp.errors import PermissionDenied
from agnes_sync.errors import AgnesError


class SignInRefused(PermissionDenied):
    """The provider answered, but what it said does not let this person in."""

    code = "sign_in_refused"
    default_hint = "Sign in with your company account, or ask an admin for a token."


class ProviderUnavailable(AgnesError):
    """The sign-in provider is down, misconfigured or answered something unreadable."""

    code = "sign_in_provider_error"
    status = 502
    default_hint = (
        "Try again in a minute; if it persists, tell an admin (the server log says more)."
    )


class SignInNotConfigured(AgnesError):
    code = "sign_in_not_configured"
    status = 503
    default_hint = "Ask an admin to finish the OIDC settings (see docs/auth.md)."
