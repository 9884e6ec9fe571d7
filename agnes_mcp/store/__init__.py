"""The system store: the server's own DuckDB and the repositories that write it."""
