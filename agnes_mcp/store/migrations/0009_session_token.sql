-- A web session signed in with a token acts within that token: its scopes (a data-only
-- token's session is not an admin's) and its life (revoked or expired, the session ends).
ALTER TABLE web_sessions ADD COLUMN token_id VARCHAR;
ALTER TABLE web_sessions ADD COLUMN scopes VARCHAR;
