"""Who an admin page acts for, and the services it calls.

The gate middleware (``agnes_mcp.api.admin_gate``) lets only signed-in admins reach
``/admin*`` and tells the page which web session opened it through the
``x-agnes-session-ref`` request header (the session's id, never its secret; Bokeh
embeds only allow-listed headers in the signed session token). Pages never trust
``pn.state.user``: :meth:`PageContext.actor` re-checks the session before each action,
so signing out or a deactivation takes effect on the next click.
"""

from __future__ import annotations

from dataclasses import dataclass

from agnes_mcp.auth.principal import Principal
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import AdminRequired
from agnes_mcp.services import Services

SESSION_REF_HEADER = "x-agnes-session-ref"
CLIENT_IP_HEADER = "x-agnes-client-ip"


@dataclass(frozen=True)
class PageContext:
    services: Services
    session_id: str
    client_ip: str | None = None  # the page's client, for its actions' audit rows

    def actor(self, *, touch: bool = True) -> Principal:
        """The admin acting now (re-checked): raises if signed out, deactivated or no
        longer an admin. What the action records is recorded with the page's client
        address (its callbacks run outside the HTTP request that set it). ``touch``:
        the admin did something (not the page's own periodic check), so the session's
        idle clock restarts."""
        client_ip_var.set(self.client_ip)
        session = self.services.web_sessions.check(self.session_id, touch=touch)
        if not session.principal.is_admin:  # the group and the admin scope
            raise AdminRequired(
                "Only members of the Admin group, signed in with the admin scope, may use the "
                "admin app."
            )
        return session.principal

    def csrf(self) -> str:
        """The form token of this session (for the sign-out form)."""
        return self.services.web_sessions.check(self.session_id, touch=False).csrf

    @classmethod
    def current(cls, services: Services) -> PageContext:
        """The context of the Bokeh document being built (inside a Panel app function)."""
        import panel as pn

        session_context = pn.state.curdoc.session_context if pn.state.curdoc else None
        request = getattr(session_context, "request", None)
        # Bokeh keeps header names as Tornado spells them ("X-Agnes-Session-Ref").
        headers = {str(k).lower(): v for k, v in request.headers.items()} if request else {}
        ref = headers.get(SESSION_REF_HEADER)
        if isinstance(ref, list):
            ref = ref[0] if len(ref) == 1 else None
        if not ref:
            raise AdminRequired("The admin app was opened without a session.")
        address = headers.get(CLIENT_IP_HEADER)
        if isinstance(address, list):
            address = address[0] if len(address) == 1 else None
        context = cls(services=services, session_id=ref, client_ip=address or None)
        context.actor()
        return context
