"""Monthly parquet shards of a Jira source's tables, upserted.

::

    extracts/<source>/data/<prefix>issues/created_month=2026-01/part-<time>-<random>.parquet
    extracts/<source>/data/<prefix>comments/created_month=2026-01/part-...parquet  ...

All the rows of one issue sit in the shard of the month the issue was created, in every
table, so an upsert or a deletion rewrites one shard per table. A rewrite reads the
month's current shard, drops the issue's old rows, adds the new ones and writes the result
as a new file (beside it under a hidden name, then renamed); switching the extract's
record to the new files, one transaction for all tables (:mod:`connectors.jira.record`),
publishes them. A failure before that leaves the previous shards and record as they were;
readers of the previous record keep their files for a grace period.

Writes are serialized per source (one lock; the webhook worker and a sync share it). An
upsert older than what is stored (``updated`` earlier) is skipped, so the last state Jira
gave wins whatever order fetches finish in; a deleted issue leaves the issue tables for
``deleted_issues``, and a copy no newer than its last known state does not bring it back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agnes_sync import atomic
from agnes_sync.contract import ExtractWriter, PublishedFile
from agnes_sync.locks import lock_for
from connectors.jira.record import ExtractRecord, Listing
from connectors.jira.rows import IssueSnapshot, Row, tombstone
from connectors.jira.tables import DELETED, ISSUES, KINDS, SCHEMAS, SORT_KEYS, TableNames


@dataclass(frozen=True)
class Entry:
    """What the store knows of one issue."""

    key: str
    month: str
    created: datetime | None
    updated: datetime | None
    summary: str | None
    deleted: bool


@dataclass(frozen=True)
class Delete:
    """An issue deleted in Jira, by id or key. ``fallback`` (the issue as the deletion event
    carried it) gives the tombstone of an issue the store never held."""

    issue_id: str | None
    key: str | None
    detected_by: str = "webhook"
    fallback: IssueSnapshot | None = None


@dataclass
class Applied:
    tables: set[str] = field(default_factory=set)
    upserted: int = 0
    stale: int = 0
    tombstoned: int = 0


@dataclass
class _Change:
    """One month: the issues whose rows go (``drop``), and the rows that come in."""

    drop: set[int] = field(default_factory=set)
    rows: dict[str, list[Row]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def replace(self, issue_id: str, rows: dict[str, list[Row]]) -> None:
        number = int(issue_id)
        self.drop.add(number)
        for kind in KINDS:
            kept = [r for r in self.rows[kind] if r["issue_id"] != number]
            self.rows[kind] = kept + rows.get(kind, [])


class ShardStore:
    """One per source and process (:meth:`of`), shared by the connector's sync and webhook
    paths."""

    _stores: ClassVar[dict[str, ShardStore]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, writer: ExtractWriter, names: TableNames) -> ShardStore:
        key = f"{writer.paths.root.resolve()}|{names.prefix}"
        with cls._guard:
            store = cls._stores.get(key)
            if store is None:
                store = cls._stores[key] = cls(writer, names)
            return store

    def __init__(self, writer: ExtractWriter, names: TableNames) -> None:
        self.record = ExtractRecord(writer, names)
        self.paths = writer.paths
        self.names = names
        self.lock = lock_for(self.paths.root / ".jira-shards")
        self._index: dict[str, Entry] | None = None
        self._keys: dict[str, str] = {}  # key -> issue id
        self._seen: tuple[str, ...] = ()  # the issue files the index was read from

    # --- what is stored ------------------------------------------------------------------

    @staticmethod
    def _index_files(listing: Listing) -> tuple[str, ...]:
        return tuple(
            sorted(f.path for kind in (ISSUES, DELETED) for f in listing.get(kind, {}).values())
        )

    def index(self, listing: Listing | None = None) -> dict[str, Entry]:
        """issue id -> entry, read from the recorded shards of the issues and of their
        tombstones, then kept up to date (read again when the record changed behind the
        store's back, e.g. a table was dropped)."""
        with self.lock:
            listing = self.record.current() if listing is None else listing
            if self._index is None or self._index_files(listing) != self._seen:
                self._index, self._keys = {}, {}
                for kind in (DELETED, ISSUES):  # an issue both live and deleted is live
                    for month, file in listing.get(kind, {}).items():
                        columns = ["issue_id", "key", "created", "updated", "summary"]
                        table = pq.read_table(self.record.path(file), columns=columns)
                        for row in table.to_pylist():
                            self._remember(
                                str(row["issue_id"]),
                                Entry(
                                    row["key"],
                                    month,
                                    row["created"],
                                    row["updated"],
                                    row["summary"],
                                    deleted=kind == DELETED,
                                ),
                            )
                self._seen = self._index_files(listing)
            return self._index

    def _remember(self, issue_id: str, entry: Entry) -> None:
        assert self._index is not None
        old = self._index.get(issue_id)
        if old is not None and self._keys.get(old.key) == issue_id:
            del self._keys[old.key]
        self._index[issue_id] = entry
        self._keys[entry.key] = issue_id

    def id_of_key(self, key: str) -> str | None:
        self.index()
        return self._keys.get(key)

    # --- writing -------------------------------------------------------------------------

    def apply(
        self, upserts: list[IssueSnapshot], deletes: list[Delete], *, all_tables: bool = False
    ) -> Applied:
        """Upsert ``upserts`` and move ``deletes`` to the tombstones, in one publish.
        Tables without a record (dropped) are left out unless ``all_tables`` (a full
        read, which rebuilds them) or none has a record yet."""
        with self.lock:
            listing = self.record.current()
            index = self.index(listing)
            now = datetime.now(UTC)
            result = Applied()
            changes: dict[str, _Change] = {}
            learnt: dict[str, Entry] = {}
            for snap in upserts:
                old = index.get(snap.issue_id)
                if old is not None and _stale(snap, old):
                    result.stale += 1
                    continue
                changes.setdefault(snap.month, _Change()).replace(snap.issue_id, snap.rows)
                if old is not None and old.month != snap.month:
                    changes.setdefault(old.month, _Change()).replace(snap.issue_id, {})
                learnt[snap.issue_id] = _entry(snap, deleted=False)
                result.upserted += 1
            for gone in deletes:
                issue_id = gone.issue_id if gone.issue_id in index else None
                if issue_id is None and gone.key:
                    issue_id = self._keys.get(gone.key)
                entry = learnt.get(issue_id or "") or (index.get(issue_id) if issue_id else None)
                if entry is None and gone.fallback is not None:
                    issue_id, entry = gone.fallback.issue_id, _entry(gone.fallback, deleted=False)
                if issue_id is None or entry is None or entry.deleted:
                    continue
                row = tombstone(
                    issue_id=issue_id,
                    key=entry.key,
                    month=entry.month,
                    created=entry.created,
                    updated=entry.updated,
                    summary=entry.summary,
                    detected_by=gone.detected_by,
                    now=now,
                )
                changes.setdefault(entry.month, _Change()).replace(issue_id, {DELETED: [row]})
                learnt[issue_id] = Entry(
                    entry.key, entry.month, entry.created, entry.updated, entry.summary, True
                )
                result.tombstoned += 1
            if changes:
                result.tables = self._publish(changes, listing, all_tables)
                for issue_id, learnt_entry in learnt.items():
                    self._remember(issue_id, learnt_entry)
                self._seen = self._index_files(self.record.current())  # (cached: no read)
            self.record.sweep()
            return result

    def ensure_recorded(self) -> None:
        """Every table has a record (a table with no rows: its placeholder)."""
        with self.lock:
            listing = self.record.current()
            missing: Listing = {k: {} for k in KINDS if k not in listing}
            if missing:
                self.record.superseded(self.record.write(missing))

    def _publish(self, changes: dict[str, _Change], listing: Listing, all_tables: bool) -> set[str]:
        """Write the changed months' new shards, then switch the record to them. Returns
        the tables whose data changed."""
        kinds = list(KINDS) if all_tables else [k for k in KINDS if k in listing] or list(KINDS)
        new: Listing = {kind: {} for kind in kinds if kind not in listing}  # to record
        written: list[Path] = []
        try:
            for month, change in sorted(changes.items()):
                for kind in kinds:
                    current = listing.get(kind, {}).get(month)
                    changed, table = self._merged(kind, current, change)
                    if not changed:
                        continue
                    months = new.setdefault(kind, dict(listing.get(kind, {})))
                    if table is None:
                        months.pop(month, None)
                        continue
                    file = self.record.new_shard(kind, month, table)
                    written.append(self.record.path(file))
                    months[month] = file
            if new:
                self.record.superseded(self.record.write(new))
        except BaseException:
            for path in written:  # never recorded: no reader knows them
                atomic.discard(path)
            raise
        return {self.names.of(k) for k in new}

    def _merged(
        self, kind: str, current: PublishedFile | None, change: _Change
    ) -> tuple[bool, pa.Table | None]:
        """Whether ``change`` changes the month's rows of ``kind``, and the rows after it
        (``None``: none left)."""
        schema = SCHEMAS[kind]
        fresh = pa.Table.from_pylist(change.rows[kind], schema=schema)
        if current is None:
            return fresh.num_rows > 0, _sorted(fresh, kind) if fresh.num_rows else None
        old = _conformed(pq.read_table(self.record.path(current)), schema)
        kept = old
        if change.drop and old.num_rows:
            hit = pc.is_in(old["issue_id"], value_set=pa.array(sorted(change.drop), pa.int64()))
            kept = old.filter(pc.invert(hit))
        if kept.num_rows == old.num_rows and fresh.num_rows == 0:
            return False, None
        table = pa.concat_tables([kept, fresh])
        return True, _sorted(table, kind) if table.num_rows else None


def _sorted(table: pa.Table, kind: str) -> pa.Table:
    return table.sort_by([(column, "ascending") for column in SORT_KEYS[kind]])


def _entry(snap: IssueSnapshot, *, deleted: bool) -> Entry:
    issue = snap.rows[ISSUES][0] if snap.rows.get(ISSUES) else {}
    return Entry(
        snap.key, snap.month, issue.get("created"), snap.updated, issue.get("summary"), deleted
    )


def _stale(snap: IssueSnapshot, old: Entry) -> bool:
    """A fetched copy older than the stored one (or no newer than a deleted one)."""
    if old.updated is None or snap.updated is None:
        return old.deleted
    if old.deleted:
        return snap.updated <= old.updated
    return snap.updated < old.updated


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns (added ones as nulls), in its order."""
    if table.num_rows == 0:
        return schema.empty_table()
    columns = [
        table[f.name].cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
