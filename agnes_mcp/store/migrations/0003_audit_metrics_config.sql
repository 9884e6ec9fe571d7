-- Audit trail, metric definitions and settings an admin can change at run time.

CREATE SEQUENCE audit_log_id START 1;

CREATE TABLE audit_log (
    id          BIGINT PRIMARY KEY DEFAULT nextval('audit_log_id'),
    occurred_at TIMESTAMPTZ NOT NULL,
    user_id     VARCHAR,
    action      VARCHAR NOT NULL,
    resource    VARCHAR,
    params      JSON,
    result      VARCHAR NOT NULL,
    duration_ms DOUBLE,
    client_ip   VARCHAR
);

CREATE TABLE metric_definitions (
    id          VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    category    VARCHAR NOT NULL,
    definition  JSON NOT NULL,
    updated_by  VARCHAR,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE server_config (
    key         VARCHAR PRIMARY KEY,
    value       JSON NOT NULL,
    updated_by  VARCHAR,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
