-- Per-table reader options, retry counts, and table profiles for the catalog.

ALTER TABLE table_registry ADD COLUMN source_options JSON;

ALTER TABLE sync_history ADD COLUMN attempts INTEGER;
ALTER TABLE sync_history ADD COLUMN duration_ms DOUBLE;

CREATE TABLE table_profiles (
    table_id    VARCHAR PRIMARY KEY,
    profiled_at TIMESTAMPTZ NOT NULL,
    rows        BIGINT,
    columns     JSON NOT NULL
);
