"""The server's catalog as this workspace last saw it: tables (remote ones included),
metric summaries and metric definitions, with the time of that contact.

Written whenever the workspace talks to the server (``agnes pull``, the catalog and
metric tools), read when the server cannot be reached, so a workspace offline still
lists what exists, says it is offline and since when, and computes metrics on the
tables it holds. Plain JSON: reading it needs neither the server nor pydantic.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from agnes_sync import atomic
from agnes_sync.workspace.layout import WorkspacePaths


@dataclass
class CachedCatalog:
    fetched_at: dt.datetime | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric id -> detail


def load(paths: WorkspacePaths) -> CachedCatalog:
    try:
        data = json.loads(paths.catalog.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return CachedCatalog()
    if not isinstance(data, dict):
        return CachedCatalog()
    try:
        fetched = dt.datetime.fromisoformat(str(data.get("fetched_at")))
    except ValueError:
        fetched = None
    return CachedCatalog(
        fetched_at=fetched,
        tables=[t for t in data.get("tables") or [] if isinstance(t, dict)],
        metrics=[m for m in data.get("metrics") or [] if isinstance(m, dict)],
        definitions={
            str(k): v for k, v in (data.get("definitions") or {}).items() if isinstance(v, dict)
        },
    )


def save(
    paths: WorkspacePaths,
    *,
    tables: list[dict[str, Any]] | None = None,
    metrics: list[dict[str, Any]] | None = None,
    definitions: dict[str, dict[str, Any]] | None = None,
    replace_definitions: bool = False,
) -> None:
    """Record what the server just said (parts left out keep their last value)."""
    current = load(paths)
    merged = dict(current.definitions) if not replace_definitions else {}
    merged.update(definitions or {})
    body = {
        "fetched_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": current.tables if tables is None else tables,
        "metrics": current.metrics if metrics is None else metrics,
        "definitions": merged,
    }
    paths.dot.mkdir(parents=True, exist_ok=True)
    # A cache, written on every catalog call: not fsynced (``load`` reads a file lost in
    # a crash as no cache, and the next contact writes it again).
    atomic.write_text(paths.catalog, json.dumps(body, default=str, sort_keys=True), durable=False)


def refresh(paths: WorkspacePaths, api: Any) -> None:
    """Fetch the catalog and every metric definition the caller may use, and keep them
    (``api``: a :class:`agnes_sync.server_api.ServerApi`, or a pull's transport)."""
    catalog = api.get("/api/catalog")
    metrics = api.get("/api/metrics", definitions="true")
    save(
        paths,
        tables=list(catalog.get("tables") or []),
        metrics=list(catalog.get("metrics") or []),
        definitions={str(d["id"]): d for d in metrics.get("definitions") or [] if "id" in d},
        replace_definitions=True,
    )
