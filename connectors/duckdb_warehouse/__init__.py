"""A DuckDB database file as a stand-in warehouse: remote tables and materialized SQL."""
