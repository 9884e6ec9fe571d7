"""Webhooks: ``POST /webhooks/{connector}/{source}``, pushed by the system a source reads.

No bearer token: the sender signs the body and the source's connector checks the
signature (its secret comes from the source's settings). The route names no connector:
any connector with the ``webhook`` capability is served the same way.

1. The source must be configured, read by ``connector`` and take webhooks, else 404.
2. The body is read up to the connector's ``webhook_max_bytes`` (413 beyond; the server's
   ``max_request_bytes`` applies first).
3. In a worker thread: the connector verifies it (no secret configured: 503; a missing or
   wrong signature: 401; an unusable payload: 400), a delivery id accepted before is a
   duplicate (200, nothing changes), and the work is queued for the source's worker.
4. 202 at once; the work runs in the background (:mod:`agnes_mcp.webhook_apply`).

The Host guard still applies (the public URL's host must be allowed); a server-to-server
sender sends no ``Origin``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from agnes_mcp.api.dependencies import ServicesDep
from agnes_mcp.errors import NotFound, PayloadTooLarge
from agnes_mcp.webhook_apply import WebhookAck, WebhookDispatcher
from agnes_sync.connector import Capability, WebhookDelivery


class WebhookSourceNotFound(NotFound):
    code = "webhook_source_not_found"
    default_hint = "The URL is /webhooks/<connector>/<source>, for a configured source."


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The dispatcher lives as long as the app; its workers stop before the services."""
    try:
        yield
    finally:
        dispatcher: WebhookDispatcher | None = getattr(app.state, "webhooks", None)
        if dispatcher is not None:
            await run_in_threadpool(dispatcher.stop)


router = APIRouter(prefix="/webhooks", tags=["webhooks"], lifespan=lifespan)


def dispatcher_of(app: FastAPI) -> WebhookDispatcher:
    found: WebhookDispatcher | None = getattr(app.state, "webhooks", None)
    if found is None:
        found = app.state.webhooks = WebhookDispatcher(app.state.services)
    return found


@router.post(
    "/{connector}/{source}",
    status_code=202,
    response_model=WebhookAck,
    summary="Receive a signed webhook delivery for a source",
    responses={
        200: {"model": WebhookAck, "description": "A duplicate or ignored delivery"},
        401: {"description": "Missing or wrong signature"},
        404: {"description": "No such source, or it takes no webhooks"},
        413: {"description": "Body too large"},
        503: {"description": "The source has no webhook secret configured"},
    },
)
async def deliver(
    connector: str, source: str, request: Request, services: ServicesDep
) -> JSONResponse:
    """No bearer token: register ``https://<server>/webhooks/<connector>/<source>`` in the
    sending system with a secret, and give the server the secret as the connector's docs
    say (an environment variable the source's options name). Answers 202 once the delivery
    is verified and queued; the work runs in the background."""
    config = services.settings.sources.get(source)
    if config is None or config.connector != connector:
        raise WebhookSourceNotFound(f"No source '{source[:100]}' read by '{connector[:100]}'.")
    instance = services.sources.connector(source)
    if Capability.WEBHOOK not in instance.capabilities:
        raise WebhookSourceNotFound(f"Source '{source}' ({connector}) takes no webhooks.")
    limit = instance.webhook_max_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(
                f"The delivery is larger than {limit} bytes, the most a {connector} "
                "webhook may send.",
                hint="Narrow the webhook's events or fields in the sender.",
            )
    delivery = WebhookDelivery(bytes(body), {k.lower(): v for k, v in request.headers.items()})
    dispatcher = dispatcher_of(request.app)
    ack = await run_in_threadpool(dispatcher.receive, source, instance, delivery)
    status = 202 if ack.status == "accepted" else 200
    return JSONResponse(ack.model_dump(), status_code=status)
