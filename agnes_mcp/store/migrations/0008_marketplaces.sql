-- Claude Code plugin marketplaces: git repositories an admin registers, synced by the
-- server, and the plugins of each repository's last good sync. A read token is never
-- stored: only the name of the environment variable holding it.

CREATE TABLE marketplaces (
    slug               VARCHAR PRIMARY KEY,
    name               VARCHAR NOT NULL,
    url                VARCHAR NOT NULL,
    ref                VARCHAR,            -- branch, tag or full commit SHA; NULL: the remote HEAD
    token_env          VARCHAR,
    username           VARCHAR,            -- sent with the token (HTTP Basic); NULL: x-access-token
    added_by           VARCHAR NOT NULL,
    added_at           TIMESTAMPTZ NOT NULL,
    last_sync_at       TIMESTAMPTZ,        -- last attempt, good or bad
    last_sync_outcome  VARCHAR CHECK (last_sync_outcome IN ('ok', 'failed')),
    last_sync_error    VARCHAR,
    last_sync_commit   VARCHAR,            -- the commit the last attempt looked at, if any
    good_commit        VARCHAR,            -- the commit served now (the last good sync)
    good_at            TIMESTAMPTZ,
    upstream_name      VARCHAR             -- the name in the repository's marketplace.json
);

CREATE TABLE marketplace_plugins (
    marketplace    VARCHAR NOT NULL,
    name           VARCHAR NOT NULL,       -- from the plugin's own plugin.json
    version        VARCHAR,
    description    VARCHAR,
    source_path    VARCHAR NOT NULL,       -- folder inside the repository, '' for the root
    content_hash   VARCHAR NOT NULL,       -- sha256 over the plugin's served files
    files          INTEGER NOT NULL,
    bytes          BIGINT NOT NULL,
    manifest       JSON NOT NULL,          -- the plugin.json as parsed
    entry          JSON NOT NULL,          -- extra fields of its marketplace.json entry
    PRIMARY KEY (marketplace, name)
);
