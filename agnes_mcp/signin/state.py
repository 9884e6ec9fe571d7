"""What sign-in keeps in memory per app: the OIDC provider (its cached discovery and
keys), the used OIDC states and the failed-attempt limiter. Held on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from agnes_mcp.errors import AuthenticationError
from agnes_mcp.services import Services
from agnes_mcp.signin.flow import UsedStates
from agnes_mcp.signin.oidc import OidcProvider
from agnes_mcp.signin.rate_limit import RateLimiter

FAILED_ATTEMPTS_PER_MINUTE = 10


@dataclass
class SignInState:
    oidc: OidcProvider
    used_states: UsedStates = field(default_factory=UsedStates)
    failures: RateLimiter = field(
        default_factory=lambda: RateLimiter(FAILED_ATTEMPTS_PER_MINUTE, 60.0)
    )


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def sign_in_state(request: Request) -> SignInState:
    found = getattr(request.app.state, "agnes_sign_in", None)
    if not isinstance(found, SignInState):
        found = SignInState(oidc=OidcProvider(services_of(request).settings))
        request.app.state.agnes_sign_in = found
    return found


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def end_previous_session(services: Services, previous_cookie: str | None) -> None:
    """Signing in again replaces the browser's old session, never keeps both (blocking)."""
    if not previous_cookie:
        return
    try:
        old = services.web_sessions.verify(previous_cookie, touch=False)
    except AuthenticationError:
        return
    services.web_sessions.sign_out(old.id)
