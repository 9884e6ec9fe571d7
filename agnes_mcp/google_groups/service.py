"""Group sync service (being built)."""

from __future__ import annotations

from agnes_mcp.settings import AgnesSettings


class GroupSync:
    """Reads a user's Google groups into ``user_group_members`` (source ``google_sync``)."""

    def __init__(self, settings: AgnesSettings) -> None:
        self._settings = settings

    @property
    def enabled(self) -> bool:
        return False

    def on_sign_in(self, user_id: str, email: str) -> None:
        """Sync one user's groups at an OIDC sign-in (blocking; never raises: a failure is
        recorded and the previous memberships stay). Call it off the event loop."""

    def start(self) -> None:
        """Start the scheduled sync of every user's groups."""

    def stop(self) -> None:
        """Stop the schedule."""
