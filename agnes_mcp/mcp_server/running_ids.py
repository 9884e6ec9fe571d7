"""One rule for both transports: a request whose id is that of one still running in its
session is refused, not run.

MCP says a request's id MUST NOT have been used before by the client in the session; one
answer is matched to each id. A second request of a running one's id was, over HTTP,
given the first's answer stream (the first was never answered), and on stdio run beside
it: its answer went out under the same id, so the client took it for the first's. The
streamable HTTP endpoint (:mod:`agnes_mcp.api.mcp_request_ids`) and ``agnes mcp`` on
stdio (:mod:`.stdio_transport`) both answer it ``-32600`` at once with this error,
naming the id, while the first runs on.
"""

from __future__ import annotations

import json

from mcp_types import INVALID_REQUEST, ErrorData

IN_FLIGHT = (
    "Invalid Request: a request with the id {id} is still running in this session; each "
    "request needs an id of its own (one answer is matched to each). It was not run."
)


def in_flight_error(ident: str | int) -> ErrorData:
    """The error answering a request whose id ``ident`` a running request has."""
    return ErrorData(code=INVALID_REQUEST, message=IN_FLIGHT.format(id=json.dumps(ident)))
