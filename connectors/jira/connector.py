"""The jira connector: Jira Cloud issues pushed by webhooks, reconciled by syncs.

Five local tables (``<prefix>issues``, ``comments``, ``changelog``, ``issuelinks`` and
``deleted_issues``, the tombstones; the prefix is ``jira_`` unless the source says
otherwise), kept as monthly parquet shards
(:mod:`connectors.jira.shards`). A webhook delivery (:mod:`connectors.jira.webhook`)
becomes "fetch this issue now" or "tombstone it", applied in batches by the server's
webhook worker; a sync (:mod:`connectors.jira.reconcile`) catches what webhooks missed.
Every table is registered as an ordinary local table, under its published name.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import ClassVar, cast

from agnes_sync.connector import (
    Capability,
    Column,
    Connector,
    SourceContext,
    SourceTable,
    TableRequest,
    WebhookDelivery,
    WebhookOutcome,
    WebhookReceipt,
)
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import InvalidTableSpec, SourceDataError
from connectors.jira import webhook
from connectors.jira.client import JiraClient
from connectors.jira.fetch import fetch_many
from connectors.jira.options import JiraOptions
from connectors.jira.reconcile import Reconciler
from connectors.jira.rows import IssueSnapshot, snapshot
from connectors.jira.shards import Delete, ShardStore
from connectors.jira.tables import DESCRIPTIONS, ISSUES, KINDS, TableNames, columns


class JiraConnector(Connector):
    name = "jira"
    description = (
        "Jira Cloud: issues, comments, changelog and issue links, pushed by webhooks "
        "and reconciled by syncs."
    )
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.FULL_REFRESH, Capability.WEBHOOK}
    )
    Options = JiraOptions
    webhook_max_bytes: ClassVar[int] = 2 * 1024 * 1024

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self.names = TableNames(self.settings.table_prefix)
        self._client: JiraClient | None = None
        self._client_lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._reconciled_at = 0.0  # monotonic start of the last finished reconcile
        self._problems: list[str] = []  # what the last reconcile could not do, to be said

    @property
    def settings(self) -> JiraOptions:
        return cast(JiraOptions, self.options)

    @property
    def client(self) -> JiraClient:
        with self._client_lock:
            if self._client is None:
                self._client = JiraClient(self.settings)
            return self._client

    # --- the tables -----------------------------------------------------------------------

    def list_tables(self) -> list[SourceTable]:
        return [SourceTable(kind, None, self.names.of(kind), DESCRIPTIONS[kind]) for kind in KINDS]

    def _kind(self, request: TableRequest) -> str:
        kind = self.names.kind_of(request.id)
        wanted = request.source_table
        if kind is None or (wanted and wanted not in (kind, request.id)):
            offered = ", ".join(f"{self.names.of(k)} (source_table {k})" for k in KINDS)
            raise InvalidTableSpec(
                f"A Jira source publishes its tables under fixed names; '{request.id}'"
                + (f" with source_table '{wanted}'" if wanted else "")
                + " is not one of them.",
                hint=f"Register one of: {offered}. Two Jira sites: give each source its own "
                "table_prefix option.",
            )
        return kind

    def describe_table(self, request: TableRequest) -> list[Column]:
        return columns(self._kind(request))

    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        """Reconcile the source with Jira (once for all its tables when their syncs run
        together) and report ``request``'s table as published."""
        self.check_supported(request)
        kind = self._kind(request)
        store = ShardStore.of(writer, self.names)
        asked = time.monotonic()
        with self._reconcile_lock:
            missing = set(self.names.all().values()) - store.record.tables()
            if missing or self._reconciled_at <= asked:  # else one that started later ran
                started = time.monotonic()
                report = Reconciler(self.client, store, self.settings).run(full=bool(missing))
                self._reconciled_at = started
                self._problems = report.problems
        store.ensure_recorded()
        published = store.record.published(kind)
        if kind == ISSUES:  # said once, in the issues table's sync history
            published.notes.extend(self._problems)
        return published

    # --- webhooks -------------------------------------------------------------------------

    def receive_webhook(self, delivery: WebhookDelivery) -> WebhookReceipt:
        return webhook.receipt(self.context.name, self.settings, delivery)

    def apply_webhook(self, work: Sequence[Hashable], writer: ExtractWriter) -> WebhookOutcome:
        """Fetch every issue the deliveries named (its state now), tombstone deleted ones,
        and publish the result in one rewrite per touched month."""
        items = [w for w in work if isinstance(w, webhook.IssueWork)]
        deleted = [w for w in items if w.action == "delete"]
        gone = {ref for w in deleted for ref in (w.key, w.issue_id) if ref}
        upserts: dict[str, webhook.IssueWork] = {}
        for w in items:
            if w.action == "upsert" and w.ref not in gone and w.ref not in upserts:
                upserts[w.ref] = w
        fetched = fetch_many(
            self.client,
            list(upserts),
            concurrency=self.settings.fetch_concurrency,
            projects=self.settings.projects,
            keep_restricted=self.settings.restricted_comments == "keep",
        )
        fresh = [s for s in fetched.snapshots if s.issue_id not in gone and s.key not in gone]
        store = ShardStore.of(writer, self.names)
        applied = store.apply(
            fresh, [Delete(w.issue_id, w.key, "webhook", _fallback(w)) for w in deleted]
        )
        return WebhookOutcome(
            tables=tuple(sorted(applied.tables)),
            retry=tuple(upserts[ref] for ref in fetched.failed),
            retry_after_seconds=fetched.retry_after_seconds,
        )


def _fallback(work: webhook.IssueWork) -> IssueSnapshot | None:
    """The deleted issue as the event carried it (tombstoned if the store never held it)."""
    if not work.payload:
        return None
    try:
        issue = json.loads(work.payload)
        return snapshot(issue, comments=[], histories=[], synced_at=datetime.now(UTC))
    except (ValueError, SourceDataError):
        return None
