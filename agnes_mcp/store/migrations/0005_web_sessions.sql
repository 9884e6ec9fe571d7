-- Sign-in for people: server-side web sessions (the cookie holds only a signed id and a
-- secret whose SHA-256 is stored here) and the outcome of each user's last group sync.

CREATE TABLE web_sessions (
    id            VARCHAR PRIMARY KEY,
    secret_hash   VARCHAR NOT NULL UNIQUE,
    user_id       VARCHAR NOT NULL,
    method        VARCHAR NOT NULL CHECK (method IN ('token', 'oidc')),
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    created_ip    VARCHAR,
    revoked_at    TIMESTAMPTZ
);

CREATE TABLE group_sync_status (
    user_id     VARCHAR PRIMARY KEY,
    synced_at   TIMESTAMPTZ NOT NULL,
    outcome     VARCHAR NOT NULL CHECK (outcome IN ('ok', 'failed')),
    error       VARCHAR,
    groups      INTEGER
);
