"""An analyst's workspace: pulled parquet, snapshots and kept results under ``.agnes/``."""
