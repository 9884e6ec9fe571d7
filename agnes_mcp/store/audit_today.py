"""Today's query totals from the audit log (the admin overview's numbers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agnes_mcp.store.database import SystemStore

# A query is an audited row with SQL that is not a dry-run estimate; bytes are counted
# on every row (a refused query stopped by the engine still read), as the budget does.
_TOTALS = (
    "SELECT count(*) FILTER (WHERE is_query), "
    "count(*) FILTER (WHERE is_query AND result <> 'ok'), "
    "coalesce(sum(scanned), 0) "
    "FROM (SELECT json_extract_string(params, '$.sql') IS NOT NULL "
    "AND action <> 'query.estimate' AS is_query, result, "
    "TRY_CAST(json_extract(params, '$.bytes_scanned') AS BIGINT) AS scanned "
    "FROM audit_log WHERE occurred_at >= ?)"
)


@dataclass(frozen=True)
class QueryTotals:
    queries: int
    refused: int
    bytes_scanned: int


def query_totals_since(store: SystemStore, since: datetime) -> QueryTotals:
    """Queries run (and refused) and bytes scanned from ``since`` on."""
    with store.cursor() as cur:
        row = cur.execute(_TOTALS, [since]).fetchone()
    if row is None:
        return QueryTotals(0, 0, 0)
    return QueryTotals(queries=int(row[0]), refused=int(row[1]), bytes_scanned=int(row[2]))
