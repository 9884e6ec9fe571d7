"""Backfill and reconcile: what a sync of a Jira source does.

1. Every issue updated since the last sync started (minus ``overlap_minutes``) is found
   through the enhanced search (``GET /rest/api/3/search/jql``, ``nextPageToken`` paging)
   and fetched again, so webhooks that never arrived are caught; the first sync reads
   every issue of the kept projects.
2. Every ``census_hours``, a key census lists the id of every issue in scope; an issue
   the store holds that Jira no longer lists (and that is older than the census) was
   deleted while no webhook arrived, and is tombstoned. A census that finds nothing while
   the store holds issues is refused (a token that lost access must not wipe the tables).

JQL reads dates in the account's time zone (``GET /rest/api/3/myself``); when the site
does not say, dates are written in UTC and the window widened by 14 hours (the largest
offset), so nothing is missed.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agnes_sync import atomic
from agnes_sync.errors import TerminalSyncError, TransientSyncError
from connectors.jira.client import JiraClient
from connectors.jira.fetch import fetch_many
from connectors.jira.options import JiraOptions
from connectors.jira.rows import project_of, valid_id, valid_key
from connectors.jira.shards import Delete, ShardStore

logger = logging.getLogger("agnes.sync.jira")
STATE_FILE = "jira-state.json"
JQL_TIME = "%Y-%m-%d %H:%M"
UNKNOWN_ZONE_MARGIN = timedelta(hours=14)
CENSUS_PAGE = 1000


@dataclass
class SyncState:
    """Kept beside the extract: where the next sync starts, when the last census ran."""

    watermark: datetime | None = None
    last_census: datetime | None = None
    full_needed: bool = False  # a table was dropped: read every issue again
    # The restricted_comments option the stored comments were read with (None: before it
    # existed); another one needs every issue read again.
    restricted_comments: str | None = None

    @classmethod
    def load(cls, path: Path) -> SyncState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(
            _time(data.get("watermark")),
            _time(data.get("last_census")),
            data.get("full_needed") is True,
            data.get("restricted_comments")
            if isinstance(data.get("restricted_comments"), str)
            else None,
        )

    def save(self, path: Path) -> None:
        data = {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "last_census": self.last_census.isoformat() if self.last_census else None,
            "full_needed": self.full_needed,
            "restricted_comments": self.restricted_comments,
        }
        atomic.write_text(path, json.dumps(data, indent=2) + "\n")


@dataclass
class ReconcileReport:
    searched: int = 0
    upserted: int = 0
    stale: int = 0
    tombstoned: int = 0
    census: bool = False
    problems: list[str] = field(default_factory=list)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def project_clause(projects: list[str]) -> str:
    """Keys quoted: a key that is a JQL reserved word (INT, DO, AS, SET, ...) is a syntax
    error bare. They are validated ([A-Z][A-Z0-9]*), so nothing in them needs escaping."""
    quoted = ", ".join(f'"{key}"' for key in projects)
    return f"project in ({quoted})" if projects else ""


def jql_since(since: datetime | None, zone: str | None, projects: list[str]) -> str:
    """``updated >= "<since, in the account's zone>"`` and the project filter."""
    clauses = [project_clause(projects)] if projects else []
    if since is not None or not projects:
        moment = since or datetime(1970, 1, 2, tzinfo=UTC)
        local = _in_zone(moment, zone)
        clauses.append(f'updated >= "{local.strftime(JQL_TIME)}"')
    return " AND ".join(clauses)


def _in_zone(moment: datetime, zone: str | None) -> datetime:
    if zone:
        try:
            return moment.astimezone(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return (moment - UNKNOWN_ZONE_MARGIN).astimezone(UTC)


class Reconciler:
    def __init__(self, client: JiraClient, store: ShardStore, options: JiraOptions) -> None:
        self.client = client
        self.store = store
        self.options = options
        self.state_path = store.paths.root / STATE_FILE

    def run(self, *, full: bool = False, now: datetime | None = None) -> ReconcileReport:
        """Bring the store up to date; ``full`` reads every issue again (a table of the
        source was dropped or never published)."""
        started = now or datetime.now(UTC)
        state = SyncState.load(self.state_path)
        if state.watermark is not None and state.restricted_comments != (
            self.options.restricted_comments
        ):  # stored comments were read under another rule: every issue again
            full = True
        if full and not state.full_needed:  # remembered until a full read has finished
            state.full_needed = True
            state.save(self.state_path)
        full = state.full_needed
        if full:
            state.watermark = None
        report = ReconcileReport()
        zone = self._zone()
        overlap = timedelta(minutes=self.options.overlap_minutes)
        since = state.watermark - overlap if state.watermark else None
        for page in self.client.search(jql_since(since, zone, self.options.projects), "updated"):
            refs = [r for r in (_ref(i) for i in page) if r]
            report.searched += len(refs)
            fetched = fetch_many(
                self.client,
                refs,
                concurrency=self.options.fetch_concurrency,
                projects=self.options.projects,
                keep_restricted=self.options.restricted_comments == "keep",
            )
            if fetched.failed:
                asked = fetched.retry_after_seconds
                raise TransientSyncError(
                    f"{len(fetched.failed)} issue(s) could not be fetched: {fetched.errors[0]}",
                    hint="Jira is rate-limiting or unavailable; the sync is retried.",
                    details={"retry_after_seconds": asked} if asked else None,
                )
            report.problems.extend(fetched.errors)
            applied = self.store.apply(fetched.snapshots, [], all_tables=full)
            report.upserted += applied.upserted
            report.stale += applied.stale
        due = timedelta(hours=self.options.census_hours)
        if state.last_census is None or started - state.last_census >= due:
            report.tombstoned = self.census(started, overlap, report.problems)
            report.census = True
            state.last_census = started
        state.watermark, state.full_needed = started, False
        state.restricted_comments = self.options.restricted_comments
        state.save(self.state_path)
        return report

    def _zone(self) -> str | None:
        account = self.client.myself()
        zone = account.get("timeZone") if account else None
        return zone if isinstance(zone, str) and zone else None

    def census(self, started: datetime, overlap: timedelta, problems: list[str]) -> int:
        """Tombstone the issues Jira no longer lists; returns how many. A kept project
        none of whose issues Jira lists any more, and that the account cannot browse, lost
        its access (Jira answers 404 alike for deleted and for hidden): its issues are
        kept and ``problems`` says so, rather than every one marked deleted."""
        scope = project_clause(self.options.projects) or 'created >= "1970-01-02 00:00"'
        listed: set[str] = set()
        for page in self.client.search(scope, "id", CENSUS_PAGE):
            listed.update(i for i in (valid_id(x.get("id")) for x in page) if i)
        cutoff = started - overlap
        held = {
            issue_id: entry
            for issue_id, entry in self.store.index().items()
            if not entry.deleted
            and (not self.options.projects or project_of(entry.key) in self.options.projects)
        }
        if not listed and held:
            raise TerminalSyncError(
                f"The key census found no issues in Jira while {len(held)} are stored; "
                "nothing was tombstoned.",
                hint=f"Check that ${self.options.token_env}'s account can still browse the "
                "source's projects.",
            )
        unlisted = [
            (issue_id, entry.key)
            for issue_id, entry in held.items()
            if issue_id not in listed and entry.created is not None and entry.created < cutoff
        ]
        confirmed = self._confirmed_gone(unlisted)
        still_listed = {project_of(held[i].key) for i in listed if i in held}
        unseen = {project_of(key) for _, key in confirmed} - still_listed
        lost = {p for p in unseen if not self.client.can_browse(p)}
        for project in sorted(lost):
            kept = sum(1 for e in held.values() if project_of(e.key) == project)
            problems.append(
                f"Jira project {project} is no longer visible to the account in "
                f"${self.options.token_env} (deleted, or its access was removed): its {kept} "
                "stored issue(s) were kept, not marked deleted."
            )
        gone = [Delete(i, key, "census") for i, key in confirmed if project_of(key) not in lost]
        if gone:
            logger.info("census: %d issue(s) deleted in Jira without a webhook", len(gone))
        return self.store.apply([], gone).tombstoned

    def _confirmed_gone(self, unlisted: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Of the issues search no longer lists, those Jira confirms gone: not found
        (deleted, or no longer visible to the account), or moved to a project not kept.
        One still readable in a kept project (archived issues leave search results) stays."""
        if not unlisted:
            return []

        def still(item: tuple[str, str]) -> bool:
            project = self.client.project_of(item[0])
            if project is None:
                return False
            return not self.options.projects or project in self.options.projects

        workers = max(1, min(self.options.fetch_concurrency, len(unlisted)))
        with ThreadPoolExecutor(workers, thread_name_prefix="agnes-jira-census") as pool:
            readable = list(pool.map(still, unlisted))
        kept = sum(readable)
        if kept:
            logger.info(
                "census: %d issue(s) not listed by search but still readable in a kept "
                "project (archived?) were kept",
                kept,
            )
        return [item for item, alive in zip(unlisted, readable, strict=True) if not alive]


def _ref(issue: dict[str, object]) -> str | None:
    return valid_key(issue.get("key")) or valid_id(issue.get("id"))
