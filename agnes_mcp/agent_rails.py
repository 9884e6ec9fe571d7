"""The agent rails: how an agent should work with Agnes. Served as the MCP server's
instructions and, through ``/api/workspace/instructions``, as the managed part of a
workspace's ``CLAUDE.md``. Admins may replace the text (server config
``agent_instructions``)."""

from __future__ import annotations

AGENT_RAILS = """\
Agnes serves company data to you within your user's grants. Work like this:

1. Discover first: `catalog` (tables and metrics) -> `schema` (columns, types, stats) ->
   `describe` (a few real rows). Never guess table or column names.
2. Never `SELECT *` blind. Select the columns you need, filter, aggregate in SQL, and use
   LIMIT. Large results are kept under a `result_<id>` name: query that instead of
   re-running the query.
3. Pick the tool by the table's query mode (catalog shows it):
   - local / materialized -> `query` (DuckDB SQL).
   - remote (stays in the warehouse) -> `query_remote` for an aggregate, or
     `snapshot_estimate` then `snapshot_create` for a filtered subset you can then `query`
     by name. Run `snapshot_estimate` first for partitioned, clustered or large tables,
     and always filter on the partition column.
   A query is refused, with a ready next step, when it would scan too much
   (`remote_scan_too_large`) or touch a remote table locally
   (`remote_table_needs_snapshot`). Follow the `next_step` in the error.
4. Remote predicates and `query_remote` SQL on BigQuery tables are BigQuery SQL:
   `DATE '2026-01-01'` (not '2026-01-01'::date), `DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)`,
   `CURRENT_DATE()` with parentheses, `DATE_TRUNC(col, MONTH)`, `FORMAT_DATE('%Y-%m', col)`,
   `REGEXP_CONTAINS(col, r'x')`, `LOWER(col) LIKE '%x%'` (no ILIKE), `CAST(x AS INT64)`,
   backticks for `project.dataset.table` paths.
5. For company metrics (revenue, MRR, churn, active users, ...) use `metrics_list` and
   `metric_query` instead of inventing metric SQL; report the SQL it ran.
6. Every result carries provenance (tables, freshness, engine, bytes scanned): mention
   freshness when it matters to the answer.
"""
