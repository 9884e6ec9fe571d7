"""``agnes pull``: keep a workspace's parquet in step with the server's manifest."""
