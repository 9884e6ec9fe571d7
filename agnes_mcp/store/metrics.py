"""Metric definitions (``metric_definitions``), kept as validated JSON by id."""

from __future__ import annotations

import json
import threading

import duckdb

from agnes_mcp.metrics.definition import MetricDefinition
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import utcnow


class MetricRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._cache: tuple[int, dict[str, MetricDefinition]] | None = None

    def _load(self) -> dict[str, MetricDefinition]:
        generation = self._store.generation
        cached = self._cache
        if cached is not None and cached[0] == generation:
            return cached[1]
        with self._store.cursor() as cur:
            rows = cur.execute("SELECT definition FROM metric_definitions ORDER BY id").fetchall()
        loaded = {}
        for (text,) in rows:
            metric = MetricDefinition.model_validate(json.loads(text))
            loaded[metric.id] = metric
        with self._lock:
            self._cache = (generation, loaded)
        return loaded

    def all(self) -> list[MetricDefinition]:
        return list(self._load().values())

    def get(self, metric_id: str) -> MetricDefinition | None:
        return self._load().get(metric_id)

    def put_many(
        self, definitions: list[MetricDefinition], *, updated_by: str | None, replace: bool
    ) -> tuple[int, int]:
        """Store ``definitions`` in one transaction; with ``replace`` the others are
        removed. Returns (written, removed)."""
        now = utcnow()
        with self._store.transaction() as cur:
            removed = 0
            if replace:
                keep = [m.id for m in definitions]
                gone = [
                    str(row[0])
                    for row in cur.execute(
                        "DELETE FROM metric_definitions WHERE NOT list_contains(?, id) "
                        "RETURNING id",
                        [keep],
                    ).fetchall()
                ]
                _drop_grants(cur, gone)
                removed = len(gone)
            for metric in definitions:
                cur.execute(
                    "INSERT OR REPLACE INTO metric_definitions "
                    "(id, name, category, definition, updated_by, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        metric.id,
                        metric.name,
                        metric.category,
                        metric.model_dump_json(exclude_defaults=True),
                        updated_by,
                        now,
                    ],
                )
        return len(definitions), removed

    def delete(self, metric_id: str) -> bool:
        """Delete a metric and the grants that named it (a new metric of the same id
        starts ungranted, as a table registered again does)."""
        with self._store.transaction() as cur:
            rows = cur.execute(
                "DELETE FROM metric_definitions WHERE id = ? RETURNING id", [metric_id]
            ).fetchall()
            _drop_grants(cur, [metric_id] if rows else [])
        return bool(rows)


def _drop_grants(cur: duckdb.DuckDBPyConnection, metric_ids: list[str]) -> None:
    if metric_ids:
        cur.execute(
            "DELETE FROM resource_grants WHERE resource_type = ? AND list_contains(?, resource_id)",
            [ResourceType.METRIC.value, metric_ids],
        )
