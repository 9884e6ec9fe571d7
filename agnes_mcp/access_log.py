"""uvicorn's access log lines without the values in a request's query string.

A URL's query can carry a credential: the sign-in provider's one-time ``code`` and the
``state`` bound to the browser's session arrive as ``/auth/oidc/callback?code=…&state=…``,
and any client may put a token in a query by mistake. Each access line names the
parameters and hides every value (``?code=…&state=…``): which parameters were sent is
kept for debugging, and no list of "secret" names has to be kept complete.
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"
HIDDEN = "…"


def without_query_values(target: str) -> str:
    """``/path?a=1&b`` as ``/path?a=…&b``: the path and each parameter's name, no value."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    names = (item.partition("=")[0] for item in query.split("&"))
    return path + "?" + "&".join(f"{name}={HIDDEN}" if name else "" for name in names)


class QueryValuesHidden(logging.Filter):
    """Rewrites the target of uvicorn's access records (``'%s - "%s %s HTTP/%s" %d'``:
    client, method, target, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], without_query_values(args[2]), *args[3:])
        return True


def hide_query_values() -> None:
    """Install the filter on uvicorn's access logger (once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, QueryValuesHidden) for f in logger.filters):
        logger.addFilter(QueryValuesHidden())
