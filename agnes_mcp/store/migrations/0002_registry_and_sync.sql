-- The table registry and the state of syncing each table.

CREATE TABLE table_registry (
    id                       VARCHAR PRIMARY KEY,
    name                     VARCHAR NOT NULL,
    description              VARCHAR NOT NULL DEFAULT '',
    source_type              VARCHAR NOT NULL,
    bucket                   VARCHAR,
    source_table             VARCHAR,
    source_query             VARCHAR,
    query_mode               VARCHAR NOT NULL DEFAULT 'local'
                             CHECK (query_mode IN ('local', 'materialized', 'remote')),
    sync_schedule            VARCHAR,
    sync_strategy            VARCHAR NOT NULL DEFAULT 'full_refresh'
                             CHECK (sync_strategy IN ('full_refresh', 'incremental', 'partitioned')),
    primary_key              VARCHAR[],
    incremental_window_days  INTEGER,
    max_history_days         INTEGER,
    incremental_column       VARCHAR,
    where_filters            VARCHAR,
    partition_by             VARCHAR,
    partition_granularity    VARCHAR CHECK (partition_granularity IN ('day', 'month', 'year')),
    initial_load_chunk_days  INTEGER,
    server_only              BOOLEAN NOT NULL DEFAULT FALSE,
    registered_by            VARCHAR,
    registered_at            TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE sync_state (
    table_id        VARCHAR PRIMARY KEY,
    status          VARCHAR NOT NULL DEFAULT 'never',
    last_started_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    last_error      VARCHAR,
    rows            BIGINT,
    size_bytes      BIGINT,
    content_hash    VARCHAR,
    watermark       VARCHAR,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE SEQUENCE sync_history_id START 1;

CREATE TABLE sync_history (
    id           BIGINT PRIMARY KEY DEFAULT nextval('sync_history_id'),
    table_id     VARCHAR NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    status       VARCHAR NOT NULL,
    rows         BIGINT,
    size_bytes   BIGINT,
    error        VARCHAR,
    trigger      VARCHAR
);
