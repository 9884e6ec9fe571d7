"""Sign-in through the OIDC provider: ``/auth/oidc/start`` sends the browser there,
``/auth/oidc/callback`` takes it back, checks everything and opens a session."""

from __future__ import annotations

import hmac
import logging
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import URLSafeSerializer
from starlette.concurrency import run_in_threadpool

from agnes_mcp.auth.sessions import SESSION_COOKIE, WebSession
from agnes_mcp.errors import UserInactive
from agnes_mcp.services import Services
from agnes_mcp.signin.cookies import set_session_cookie
from agnes_mcp.signin.flow import FLOW_COOKIE, FLOW_PATH, FLOW_SECONDS, Flow
from agnes_mcp.signin.identity import Identity, identity_from_claims
from agnes_mcp.signin.next_url import destination, safe_next
from agnes_mcp.signin.pages import problem_page
from agnes_mcp.signin.problems import ProviderUnavailable, SignInNotConfigured, SignInRefused
from agnes_mcp.signin.provisioning import principal_of, user_for
from agnes_mcp.signin.state import (
    client_ip,
    end_previous_session,
    services_of,
    sign_in_state,
)
from agnes_mcp.store.users import User

logger = logging.getLogger("agnes.signin")
router = APIRouter(include_in_schema=False)


def _flow_signer(services: Services) -> URLSafeSerializer:
    return services.web_sessions.serializer("oidc")


def _set_flow(services: Services, response: Response, flow: Flow) -> None:
    options = services.web_sessions.cookie_options() | {"path": FLOW_PATH}
    response.set_cookie(
        FLOW_COOKIE, flow.dump(_flow_signer(services)), max_age=FLOW_SECONDS, **options
    )


def _clear_flow(services: Services, response: Response) -> Response:
    options = services.web_sessions.cookie_options() | {"path": FLOW_PATH}
    response.delete_cookie(FLOW_COOKIE, **options)
    return response


@router.get("/auth/oidc/start")
async def oidc_start(request: Request, next: str | None = None) -> Response:
    services = services_of(request)
    provider = sign_in_state(request).oidc
    flow = Flow.new(safe_next(next), time.time())
    domains = services.settings.sign_in_domains
    try:
        url = await provider.authorization_url(
            state=flow.state,
            nonce=flow.nonce,
            code_verifier=flow.code_verifier,
            login_hint_domain=domains[0] if len(domains) == 1 else None,
        )
    except (ProviderUnavailable, SignInNotConfigured) as exc:
        logger.warning("OIDC sign-in could not start: %s", exc.message)
        return problem_page(services.settings, "Sign-in is unavailable", exc)
    response = RedirectResponse(url, status_code=303)
    _set_flow(services, response, flow)
    return response


def _open_session(
    services: Services, identity: Identity, ip: str, previous: str | None
) -> tuple[User, WebSession, str]:
    user = user_for(services, identity)
    # Groups first, so the session (and where it lands) reflects them; never raises.
    services.group_sync.on_sign_in(user.id, user.email)
    session, cookie = services.web_sessions.sign_in(user.id, "oidc", ip)
    end_previous_session(services, previous)
    return user, session, cookie


@router.get("/auth/oidc/callback")
async def oidc_callback(request: Request) -> Response:
    services = services_of(request)
    state = sign_in_state(request)
    params = request.query_params
    settings = services.settings
    identity: Identity | None = None
    try:
        flow = Flow.load(_flow_signer(services), request.cookies.get(FLOW_COOKIE), time.time())
        if params.get("error"):
            raise SignInRefused(
                f"The provider did not sign you in ({params['error'][:100]}).",
                hint="Try again; if you cancelled, that is all this means.",
            )
        returned = params.get("state", "")
        if not returned or not hmac.compare_digest(returned.encode(), flow.state.encode()):
            raise SignInRefused(
                "The provider's answer does not belong to the sign-in this browser started.",
                hint="Start again from the sign-in page.",
            )
        code = params.get("code", "")
        if not code:
            raise SignInRefused("The provider's answer carries no authorization code.")
        state.used_states.claim(returned)
        answer = await state.oidc.exchange(code, flow.code_verifier)
        claims = await state.oidc.verify(answer.id_token, flow.nonce)
        claims = await state.oidc.with_userinfo(claims, answer.access_token)
        identity = identity_from_claims(
            claims, settings.sign_in_domains, require_hd=state.oidc.is_google
        )
        _, session, cookie = await run_in_threadpool(
            _open_session,
            services,
            identity,
            client_ip(request),
            request.cookies.get(SESSION_COOKIE),
        )
    except UserInactive as exc:
        if identity is not None:
            found = await run_in_threadpool(services.users.by_email, identity.email)
            if found is not None:
                services.audit.record(
                    principal_of(found), "auth.sign_in", result=exc.code, params={"method": "oidc"}
                )
        refusal = SignInRefused(
            f"Your account{' ' + identity.email if identity else ''} is deactivated.",
            hint="Ask an admin to reactivate it.",
        )
        page = problem_page(settings, "Account deactivated", refusal, status_code=403)
        return _clear_flow(services, page)
    except SignInRefused as exc:
        logger.info("OIDC sign-in refused: %s", exc.message)
        return _clear_flow(services, problem_page(settings, "Sign-in refused", exc))
    except (ProviderUnavailable, SignInNotConfigured) as exc:
        logger.warning("OIDC sign-in failed: %s", exc.message)
        return _clear_flow(services, problem_page(settings, "Sign-in failed", exc))
    services.audit.record(session.principal, "auth.sign_in", params={"method": "oidc"})
    response = RedirectResponse(destination(flow.next, session.principal), status_code=303)
    set_session_cookie(services, response, cookie)
    return _clear_flow(services, response)
