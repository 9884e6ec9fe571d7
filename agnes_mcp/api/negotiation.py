"""Which media type a data route answers in, from the request's ``Accept`` header.

Data routes answer JSON or Arrow IPC (:data:`~agnes_mcp.api.arrow_stream.ARROW_STREAM`);
each names what it can produce, its default first. A missing ``Accept``, ``*/*`` or a
range that admits the default gives the default; a request whose ``Accept`` admits none
of them (``text/csv``; ``application/json;q=0``) is refused with ``406 not_acceptable``
naming what the route can produce, never answered in a type it did not ask for.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from agnes_mcp.api.arrow_stream import ARROW_STREAM
from agnes_mcp.errors import NotAcceptable

JSON = "application/json"


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` value with their quality (``q``, default 1)."""
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                quality = min(max(quality, 0.0), 1.0) if quality == quality else 0.0  # NaN
        ranges.append((media.lower(), quality))
    return ranges


def _score(offer: str, ranges: list[tuple[str, float]]) -> tuple[float, int, int]:
    """How much the client wants ``offer``: the quality of the most specific range that
    matches it (an exact type, then ``type/*``, then ``*/*``; 0 when none does), then that
    specificity, then how early the client named it (a tie goes to the one named first)."""
    kind = offer.split("/")[0]
    for specificity, wanted in ((2, offer), (1, f"{kind}/*"), (0, "*/*")):
        for position, (media, quality) in enumerate(ranges):
            if media == wanted:
                return quality, specificity, -position
    return 0.0, 0, 0


def chosen_type(request: Request, offers: Sequence[str]) -> str:
    """The media type of ``offers`` (the route's default first) to answer ``request`` in,
    or :class:`NotAcceptable`."""
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return offers[0]
    ranges = _ranges(accept)
    best = max(offers, key=lambda offer: _score(offer, ranges))  # the first of equals
    best_quality = _score(best, ranges)[0]
    if best_quality <= 0:
        raise NotAcceptable(
            f"This route answers in {' or '.join(offers)}, and the request's Accept "
            f"header ({accept[:200]}) "
            f"{'admits neither' if len(offers) > 1 else 'does not admit it'}.",
            hint=f"Send 'Accept: {offers[0]}' (or no Accept header) for {offers[0]}"
            + (f", 'Accept: {offers[1]}' for {offers[1]}." if len(offers) > 1 else "."),
            details={"offered": list(offers)},
        )
    return best


def wants_arrow(request: Request, offers: Sequence[str] = (JSON, ARROW_STREAM)) -> bool:
    """Whether to answer ``request`` as Arrow IPC (else JSON); :class:`NotAcceptable` when
    it admits neither."""
    return chosen_type(request, offers) == ARROW_STREAM
