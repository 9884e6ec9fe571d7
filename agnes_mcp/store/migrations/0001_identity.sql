-- Users, groups, memberships, grants and personal access tokens.
-- No foreign keys: DuckDB checks them eagerly on UPDATE; the repositories keep references whole.

CREATE TABLE users (
    id          VARCHAR PRIMARY KEY,
    email       VARCHAR NOT NULL UNIQUE,
    name        VARCHAR,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    last_pull_at TIMESTAMPTZ
);

CREATE TABLE user_groups (
    id          VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL UNIQUE,
    description VARCHAR NOT NULL DEFAULT '',
    is_system   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- One row per (user, group, writer): the admin UI, the Google group sync and the
-- system seed each add and remove only their own rows.
CREATE TABLE user_group_members (
    user_id     VARCHAR NOT NULL,
    group_id    VARCHAR NOT NULL,
    source      VARCHAR NOT NULL CHECK (source IN ('admin', 'google_sync', 'system_seed')),
    added_by    VARCHAR,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (user_id, group_id, source)
);

CREATE TABLE resource_grants (
    id            VARCHAR PRIMARY KEY,
    group_id      VARCHAR NOT NULL,
    resource_type VARCHAR NOT NULL,
    resource_id   VARCHAR NOT NULL,
    granted_by    VARCHAR,
    granted_at    TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    UNIQUE (group_id, resource_type, resource_id)
);

-- The raw token is never stored: only its SHA-256 and a public lookup prefix.
CREATE TABLE personal_access_tokens (
    id           VARCHAR PRIMARY KEY,
    user_id      VARCHAR NOT NULL,
    name         VARCHAR NOT NULL,
    prefix       VARCHAR NOT NULL UNIQUE,
    token_hash   VARCHAR NOT NULL UNIQUE,
    scopes       VARCHAR[] NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    last_used_ip VARCHAR,
    revoked_at   TIMESTAMPTZ
);

INSERT INTO user_groups (id, name, description, is_system) VALUES
    ('admin', 'Admin', 'Administrators: every check passes for members.', TRUE),
    ('everyone', 'Everyone', 'Every user is a member.', TRUE);
