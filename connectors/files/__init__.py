"""The embedded default source: CSV, TSV, parquet and JSON files from a local folder."""
