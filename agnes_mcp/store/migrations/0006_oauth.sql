-- OAuth 2.1 for MCP clients: registered clients (RFC 7591), grants (one per consent: a
-- user lets a client act for them; refresh-token rotation stays inside a grant, so a
-- reused refresh token revokes the whole grant), and the grant's tokens. Secrets are
-- never stored: client secrets and tokens are kept as SHA-256 hashes only.

CREATE TABLE oauth_clients (
    client_id      VARCHAR PRIMARY KEY,
    client_name    VARCHAR NOT NULL,
    redirect_uris  VARCHAR[] NOT NULL,
    metadata       JSON NOT NULL,
    secret_hash    VARCHAR,
    created_at     TIMESTAMPTZ NOT NULL,
    created_ip     VARCHAR
);

CREATE TABLE oauth_grants (
    id            VARCHAR PRIMARY KEY,
    user_id       VARCHAR NOT NULL,
    client_id     VARCHAR NOT NULL,
    client_name   VARCHAR NOT NULL,
    scopes        VARCHAR[] NOT NULL,
    resource      VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    revoked_why   VARCHAR
);

CREATE TABLE oauth_tokens (
    token_hash   VARCHAR PRIMARY KEY,
    grant_id     VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL CHECK (kind IN ('access', 'refresh')),
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    rotated_at   TIMESTAMPTZ
);

CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);

-- Which client acted, for calls made with an OAuth access token.
ALTER TABLE audit_log ADD COLUMN client VARCHAR;
