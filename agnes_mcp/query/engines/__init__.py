"""Remote engines: where remote tables are queried (a DuckDB warehouse, BigQuery)."""
