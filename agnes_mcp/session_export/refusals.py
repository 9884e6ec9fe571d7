"""The refusals of a session export."""

from __future__ import annotations

from agnes_mcp.errors import InvalidRequest, NotFound


class NothingToExport(NotFound):
    code = "session_empty"
    default_hint = (
        "Widen the window: since='24h' (agnes notebook export --since 24h), or name a "
        "session (its id is in an exported notebook's first cell)."
    )


class SinceInvalid(InvalidRequest):
    code = "since_invalid"
    default_hint = "Give a duration such as 30m, 2h, 1d or 1w, or an ISO time (UTC if no zone)."
