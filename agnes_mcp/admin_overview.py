"""The numbers on the admin app's overview: tables by mode, the last sync per source,
failures that need an admin, today's queries and bytes, storage per source, version and
data dir. Read through the repositories (no SQL here); pending audit rows are flushed
first so a query that just ran is counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from agnes_mcp import __version__
from agnes_mcp.store.audit_today import query_totals_since

if TYPE_CHECKING:
    from agnes_mcp.services import Services


class SourceOverview(BaseModel):
    name: str
    connector: str
    tables: int = Field(description="Registered tables read from this source.")
    last_sync_at: datetime | None = Field(description="Latest sync started, any outcome.")
    last_success_at: datetime | None
    storage_bytes: int = Field(description="Bytes on disk under extracts/<source>.")


class SyncFailure(BaseModel):
    table_id: str
    source: str
    error: str
    failed_at: datetime | None


class Overview(BaseModel):
    version: str
    data_dir: str
    tables_by_mode: dict[str, int]
    sources: list[SourceOverview]
    failures: list[SyncFailure]
    problems: list[str] = Field(description="Extract problems (e.g. two sources, one name).")
    queries_today: int
    refused_today: int
    bytes_scanned_today: int
    today: datetime = Field(description="Start of today (UTC) for the counts above.")


def bytes_under(root: Path) -> int:
    """Size of the files under ``root`` (0 when it does not exist)."""
    if not root.is_dir():
        return 0
    total = 0
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # removed while we walked (a sync publishing)
            continue
    return total


def _latest(values: list[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def overview(services: Services, now: datetime | None = None) -> Overview:
    now = now or datetime.now(UTC)
    today = datetime.combine(now.date(), time(), tzinfo=UTC)
    tables = services.registry.all()
    states = services.sync_states.all()
    by_source: dict[str, list[str]] = {}
    for table in tables:
        by_source.setdefault(table.source_type, []).append(table.id)
    connectors = {info.name: info.connector for info in services.sources.describe()}
    sources = []
    for name in sorted(set(connectors) | set(by_source)):
        ids = by_source.get(name, [])
        sources.append(
            SourceOverview(
                name=name,
                connector=connectors.get(name, "(not configured)"),
                tables=len(ids),
                last_sync_at=_latest([s.last_started_at for i in ids if (s := states.get(i))]),
                last_success_at=_latest([s.last_success_at for i in ids if (s := states.get(i))]),
                storage_bytes=bytes_under(services.settings.extracts_dir / name),
            )
        )
    failures = [
        SyncFailure(
            table_id=table.id,
            source=table.source_type,
            error=state.last_error or "failed",
            failed_at=state.last_started_at,
        )
        for table in tables
        if (state := states.get(table.id)) is not None and state.status == "error"
    ]
    services.write_behind.flush()
    totals = query_totals_since(services.store, today)
    return Overview(
        version=__version__,
        data_dir=str(services.settings.data_dir),
        tables_by_mode=dict(sorted(Counter(t.query_mode.value for t in tables).items())),
        sources=sources,
        failures=failures,
        problems=list(services.orchestrator.problems()),
        queries_today=totals.queries,
        refused_today=totals.refused,
        bytes_scanned_today=totals.bytes_scanned,
        today=today,
    )
