"""Webhook deliveries, from an accepted request to queryable rows, for any connector.

:class:`WebhookDispatcher` is what the route calls (in a worker thread, never on the event
loop): the source's connector verifies the delivery and says what it asks for
(:meth:`~agnes_sync.connector.Connector.receive_webhook`); a delivery id seen before is a
duplicate and changes nothing; the work is queued for the source's worker and the request
answered.

:class:`SourceWorker` is one thread per source. It takes everything queued (equal items
merged: 50 deliveries for one issue while a batch runs become one item of the next batch),
hands it to :meth:`~agnes_sync.connector.Connector.apply_webhook` with the source's
:class:`~agnes_sync.contract.ExtractWriter`, and, when tables changed, re-reads that one
extract into the analytics DB (``Orchestrator.rebuild_source``: the cheapest way to make
new rows queryable, and the same step a sync ends with). Items a connector could not do
yet (the source briefly unavailable) are tried again later with backoff; after
``max_attempts`` they are dropped and logged (the source's next sync catches them up).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Literal

from pydantic import BaseModel, Field

from agnes_mcp.services import Services
from agnes_mcp.webhook_deliveries import SeenDeliveries
from agnes_sync.connector import Connector, WebhookDelivery
from agnes_sync.contract import ExtractWriter
from agnes_sync.errors import AgnesError, SyncError
from agnes_sync.retry import asked_pause

logger = logging.getLogger("agnes.webhooks")
BATCH_ITEMS = 500


class WebhookAck(BaseModel):
    status: Literal["accepted", "duplicate", "ignored"] = Field(
        description="accepted: queued (202); duplicate: this delivery id was accepted before; "
        "ignored: nothing in it for this source."
    )
    items: int = Field(default=0, description="Work items queued.")
    note: str = Field(default="", description="Why a delivery was ignored.")


class SourceWorker:
    def __init__(
        self,
        source: str,
        services: Services,
        *,
        retry_seconds: float = 2.0,
        max_attempts: int = 5,
    ) -> None:
        self.source = source
        self.services = services
        self.retry_seconds = retry_seconds
        self.max_attempts = max_attempts
        self._cond = threading.Condition()
        self._pending: OrderedDict[Hashable, int] = OrderedDict()  # item -> attempts so far
        self._later: list[tuple[float, int, Hashable, int]] = []  # (due, seq, item, attempts)
        self._seq = itertools.count()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.last_error: str | None = None

    def submit(self, items: tuple[Hashable, ...]) -> None:
        with self._cond:
            for item in items:
                self._pending.setdefault(item, 0)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"agnes-webhooks-{self.source}", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def idle(self) -> bool:
        return not (self._pending or self._later or self._busy)

    def wait_idle(self, timeout: float) -> bool:
        """Whether every queued item was done (or given up) within ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(self.idle, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self) -> list[tuple[Hashable, int]] | None:
        """The next batch (``None``: stop), waiting for one."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    _, _, item, attempts = heapq.heappop(self._later)
                    self._pending.setdefault(item, attempts)
                if self._pending:
                    batch: list[tuple[Hashable, int]] = []
                    while self._pending and len(batch) < BATCH_ITEMS:
                        batch.append(self._pending.popitem(last=False))
                    self._busy = True
                    return batch
                wait = self._later[0][0] - now if self._later else None
                self._cond.wait(wait)

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._apply(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self.batches += 1
                    self._cond.notify_all()

    def _apply(self, batch: list[tuple[Hashable, int]]) -> None:
        attempts = dict(batch)
        try:
            started = time.perf_counter()
            connector = self.services.sources.connector(self.source)
            writer = ExtractWriter(self.services.settings.extracts_dir, self.source)
            outcome = connector.apply_webhook([item for item, _ in batch], writer)
            applied = time.perf_counter()
            if outcome.tables:
                self.services.orchestrator.rebuild_source(self.source)
            self.last_error = None
            logger.debug(
                "source '%s': %d item(s) applied in %.0f ms, served %.0f ms later",
                self.source,
                len(batch),
                (applied - started) * 1000,
                (time.perf_counter() - applied) * 1000,
            )
        except AgnesError as exc:
            self.last_error = exc.message
            transient = bool(getattr(exc, "transient", False))
            logger.warning("webhooks of source '%s' failed: %s", self.source, exc.message)
            if transient:
                asked = exc.retry_after_seconds if isinstance(exc, SyncError) else None
                self._later_try([item for item, _ in batch], attempts, asked)
            return
        except Exception:
            incident = secrets.token_hex(6)
            self.last_error = f"unexpected failure (incident {incident})"
            logger.exception(
                "webhooks of source '%s' failed unexpectedly (incident %s)", self.source, incident
            )
            return
        self._later_try(list(outcome.retry), attempts, outcome.retry_after_seconds)

    def _later_try(
        self, items: list[Hashable], attempts: dict[Hashable, int], asked: float | None = None
    ) -> None:
        """Queue ``items`` again, with backoff, and never before the pause the source
        asked for (``asked`` seconds)."""
        with self._cond:
            for item in items:
                tried = attempts.get(item, 0) + 1
                if tried >= self.max_attempts:
                    logger.error(
                        "webhook work %r of source '%s' dropped after %d attempts; the next "
                        "sync of the source catches it up",
                        item,
                        self.source,
                        tried,
                    )
                    continue
                # never a wait longer than a day, whatever the source said: a wait no
                # timer can take (centuries) stopped this worker, and the source's
                # webhooks with it, until a restart
                wait = max(self.retry_seconds * 2 ** (tried - 1), asked_pause(asked or 0.0))
                due = time.monotonic() + wait
                heapq.heappush(self._later, (due, next(self._seq), item, tried))
            self._cond.notify_all()


class WebhookDispatcher:
    """One per server: the seen delivery ids and the worker of each source."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._workers: dict[str, SourceWorker] = {}
        self._seen: dict[str, SeenDeliveries] = {}

    def worker(self, source: str) -> SourceWorker:
        with self._lock:
            found = self._workers.get(source)
            if found is None:
                found = self._workers[source] = SourceWorker(source, self.services)
            return found

    def seen(self, source: str) -> SeenDeliveries:
        with self._lock:
            found = self._seen.get(source)
            if found is None:
                path = self.services.settings.state_dir / "webhooks" / f"{source}.seen"
                found = self._seen[source] = SeenDeliveries(path)
            return found

    def receive(self, source: str, connector: Connector, delivery: WebhookDelivery) -> WebhookAck:
        """Verify, deduplicate and queue one delivery (raises the connector's typed
        refusals: 503 no secret, 401 bad signature, 400 bad payload)."""
        receipt = connector.receive_webhook(delivery)
        if receipt.delivery_id is not None:
            ident = receipt.delivery_id
            if not (ident.isprintable() and len(ident) <= 200):
                ident = hashlib.sha256(ident.encode()).hexdigest()
            if not self.seen(source).first_time(ident):
                return WebhookAck(status="duplicate")
        if not receipt.work:
            return WebhookAck(status="ignored", note=receipt.note)
        self.worker(source).submit(receipt.work)
        return WebhookAck(status="accepted", items=len(receipt.work))

    def wait_idle(self, source: str, timeout: float) -> bool:
        return self.worker(source).wait_idle(timeout)

    def stop(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop()
