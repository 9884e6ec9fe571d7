"""A whole-answer deadline for every call to the sign-in provider.

httpx's ``timeout`` bounds each network operation, not an answer: a provider (or a proxy
in front of it) that trickles its discovery document, JWKS, token or userinfo answer a
byte at a time never timed out. The sign-in waited for ever, and as the discovery
document and the keys are fetched under one lock, so did every other sign-in behind it.
Each call now has :data:`ANSWER_SECONDS` in all, and a body is read up to
:data:`MAX_ANSWER_BYTES` (a JWKS or a discovery document is a few kilobytes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from agnes_mcp.signin.problems import ProviderUnavailable

ANSWER_SECONDS = 20.0
MAX_ANSWER_BYTES = 1 << 20


@asynccontextmanager
async def answer_deadline(what: str, url: str) -> AsyncIterator[None]:
    """Give the provider's ``what`` (at ``url``) :data:`ANSWER_SECONDS` in all."""
    seconds = ANSWER_SECONDS
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise ProviderUnavailable(
            f"The sign-in provider's {what} ({url}) had not fully arrived after {seconds:g} s."
        ) from None


async def read_capped(response: httpx.Response, what: str, url: str) -> bytes:
    """The body of a streamed ``response``, refused past :data:`MAX_ANSWER_BYTES`."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise ProviderUnavailable(
                f"The sign-in provider's {what} ({url}) is larger than "
                f"{MAX_ANSWER_BYTES // 1024} KiB."
            )
    return bytes(body)
