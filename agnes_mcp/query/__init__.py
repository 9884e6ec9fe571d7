"""The query service: SQL rails (sqlglot + a sandboxed DuckDB), remote engines, scan caps."""
