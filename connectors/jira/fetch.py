"""Fetching many issues at once (bounded), as snapshots ready for the shard store."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agnes_sync.errors import SourceDataError, TransientSyncError
from connectors.jira.client import FetchedIssue, JiraClient
from connectors.jira.rows import IssueSnapshot, snapshot
from connectors.jira.tables import ISSUES

logger = logging.getLogger("agnes.sync.jira")


@dataclass
class Fetched:
    snapshots: list[IssueSnapshot] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # Jira says: no such issue (404)
    failed: list[str] = field(default_factory=list)  # transient failures: try again later
    retry_after_seconds: float | None = None  # the longest pause Jira asked for
    out_of_scope: list[str] = field(default_factory=list)  # in a project not kept
    errors: list[str] = field(default_factory=list)


def fetch_many(
    client: JiraClient,
    refs: list[str],
    *,
    concurrency: int,
    projects: list[str],
    keep_restricted: bool = False,
) -> Fetched:
    """Fetch ``refs`` (keys or ids) now, at most ``concurrency`` at a time. A terminal
    failure (the token refused) raises; a transient one lands in ``failed``."""
    result = Fetched()
    if not refs:
        return result
    synced_at = datetime.now(UTC)

    def one(ref: str) -> tuple[str, FetchedIssue | Exception | None]:
        try:
            return ref, client.issue(ref)
        except (TransientSyncError, SourceDataError) as exc:
            return ref, exc

    workers = max(1, min(concurrency, len(refs)))
    if workers == 1:
        answers = [one(ref) for ref in refs]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="agnes-jira-fetch") as pool:
            answers = list(pool.map(one, refs))
    for ref, answer in answers:
        if isinstance(answer, TransientSyncError):
            result.failed.append(ref)
            result.errors.append(answer.message)
            asked = answer.retry_after_seconds
            if asked is not None:
                result.retry_after_seconds = max(result.retry_after_seconds or 0.0, asked)
        elif isinstance(answer, Exception):
            logger.warning("issue %s skipped: %s", ref, answer)
            result.errors.append(str(answer))
        elif answer is None:
            result.missing.append(ref)
        else:
            try:
                snap = snapshot(
                    answer.issue,
                    comments=answer.comments,
                    histories=answer.histories,
                    synced_at=synced_at,
                    keep_restricted=keep_restricted,
                )
            except SourceDataError as exc:
                logger.warning("issue %s skipped: %s", ref, exc.message)
                result.errors.append(exc.message)
                continue
            project = snap.rows[ISSUES][0]["project_key"]
            if projects and project not in projects:
                result.out_of_scope.append(ref)
            else:
                result.snapshots.append(snap)
    return result
