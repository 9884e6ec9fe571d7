"""OAuth clients, grants and tokens of MCP clients (migration 6).

A *grant* is one consent: user U lets client C act for them on resource R. Every access
and refresh token belongs to one grant; revoking the grant (the user, an admin, RFC 7009
revocation, or a reused refresh token) ends all of its tokens at once. Tokens and client
secrets are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc

TokenKind = Literal["access", "refresh"]

_CLIENT_COLUMNS = (
    "client_id, client_name, redirect_uris, metadata, secret_hash, created_at, created_ip"
)
_GRANT_COLUMNS = (
    "id, user_id, client_id, client_name, scopes, resource, created_at, last_used_at, "
    "revoked_at, revoked_why"
)


class OAuthClientRecord(BaseModel):
    client_id: str
    client_name: str
    redirect_uris: list[str]
    metadata: dict[str, Any]  # the registration as the client sent it (no secret)
    secret_hash: str | None
    created_at: datetime
    created_ip: str | None


class OAuthGrant(BaseModel):
    """One consent, as listed on the Tokens page and ``/me``."""

    id: str
    user_id: str
    client_id: str
    client_name: str
    scopes: list[str]
    resource: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_why: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class OAuthTokenRecord:
    token_hash: str
    grant_id: str
    kind: TokenKind
    created_at: datetime
    expires_at: datetime
    rotated_at: datetime | None


def _client(row: tuple[Any, ...]) -> OAuthClientRecord:
    return OAuthClientRecord(
        client_id=row[0],
        client_name=row[1],
        redirect_uris=list(row[2]),
        metadata=json.loads(row[3]) if isinstance(row[3], str) else dict(row[3]),
        secret_hash=row[4],
        created_at=as_utc(row[5]),
        created_ip=row[6],
    )


def _grant(row: tuple[Any, ...]) -> OAuthGrant:
    return OAuthGrant(
        id=row[0],
        user_id=row[1],
        client_id=row[2],
        client_name=row[3],
        scopes=list(row[4]),
        resource=row[5],
        created_at=as_utc(row[6]),
        last_used_at=as_utc(row[7]),
        revoked_at=as_utc(row[8]),
        revoked_why=row[9],
    )


class OAuthRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    # --- clients ------------------------------------------------------------------------

    def add_client(self, record: OAuthClientRecord) -> None:
        # A new client is in nobody's cache: no generation bump.
        with self._store.writer() as cur:
            cur.execute(
                f"INSERT INTO oauth_clients ({_CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    record.client_id,
                    record.client_name,
                    record.redirect_uris,
                    json.dumps(record.metadata),
                    record.secret_hash,
                    record.created_at,
                    record.created_ip,
                ],
            )

    def purge_unused_clients(self, before: datetime) -> int:
        """Forget clients registered before ``before`` that no sign-in ever used (no grant
        names them): registration is open to anyone, so what was never used must not stay
        for good. A client that comes back registers again (RFC 7591)."""
        with self._store.writer() as cur:
            rows = cur.execute(
                "DELETE FROM oauth_clients c WHERE c.created_at < ? AND NOT EXISTS "
                "(SELECT 1 FROM oauth_grants g WHERE g.client_id = c.client_id) "
                "RETURNING client_id",
                [before],
            ).fetchall()
        return len(rows)

    def client(self, client_id: str) -> OAuthClientRecord | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = ?", [client_id]
            ).fetchone()
        return _client(row) if row else None

    # --- grants -------------------------------------------------------------------------

    def add_grant(self, grant: OAuthGrant) -> None:
        with self._store.writer() as cur:
            cur.execute(
                f"INSERT INTO oauth_grants ({_GRANT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    grant.id,
                    grant.user_id,
                    grant.client_id,
                    grant.client_name,
                    grant.scopes,
                    grant.resource,
                    grant.created_at,
                    grant.last_used_at,
                    grant.revoked_at,
                    grant.revoked_why,
                ],
            )

    def grant(self, grant_id: str) -> OAuthGrant | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                f"SELECT {_GRANT_COLUMNS} FROM oauth_grants WHERE id = ?", [grant_id]
            ).fetchone()
        return _grant(row) if row else None

    def grants(self, *, user_id: str | None = None, active_only: bool = False) -> list[OAuthGrant]:
        """Grants, newest first; of one user when ``user_id`` is given."""
        clauses, params = [], []
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(user_id)
        if active_only:
            clauses.append("revoked_at IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._store.cursor() as cur:
            rows = cur.execute(
                f"SELECT {_GRANT_COLUMNS} FROM oauth_grants{where} ORDER BY created_at DESC, id",
                params,
            ).fetchall()
        return [_grant(r) for r in rows]

    def revoke_grant(self, grant_id: str, at: datetime, why: str) -> bool:
        """End a grant and so every token of it; ``False`` when it was already revoked."""
        with self._store.transaction() as cur:  # bumps the generation: caches drop its tokens
            row = cur.execute(
                "UPDATE oauth_grants SET revoked_at = ?, revoked_why = ? "
                "WHERE id = ? AND revoked_at IS NULL RETURNING id",
                [at, why, grant_id],
            ).fetchone()
        return row is not None

    def record_uses(self, uses: Iterable[tuple[str, datetime]]) -> int:
        rows = [[at, grant_id] for grant_id, at in uses]
        if not rows:
            return 0
        with self._store.writer() as cur:
            cur.executemany(
                "UPDATE oauth_grants SET last_used_at = greatest(coalesce(last_used_at, ?), ?) "
                "WHERE id = ?",
                [[at, at, grant_id] for at, grant_id in rows],
            )
        return len(rows)

    # --- tokens -------------------------------------------------------------------------

    def add_tokens(self, tokens: Iterable[OAuthTokenRecord]) -> None:
        rows = [
            [t.token_hash, t.grant_id, t.kind, t.created_at, t.expires_at, t.rotated_at]
            for t in tokens
        ]
        with self._store.writer() as cur:
            cur.executemany(
                "INSERT INTO oauth_tokens "
                "(token_hash, grant_id, kind, created_at, expires_at, rotated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def token(self, token_hash: str) -> OAuthTokenRecord | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                "SELECT token_hash, grant_id, kind, created_at, expires_at, rotated_at "
                "FROM oauth_tokens WHERE token_hash = ?",
                [token_hash],
            ).fetchone()
        if row is None:
            return None
        return OAuthTokenRecord(
            token_hash=row[0],
            grant_id=row[1],
            kind=row[2],
            created_at=as_utc(row[3]),
            expires_at=as_utc(row[4]),
            rotated_at=as_utc(row[5]),
        )

    def rotate(self, token_hash: str, at: datetime, successors: Iterable[OAuthTokenRecord]) -> bool:
        """Mark a refresh token used and store its successors, in one transaction; ``False``
        (nothing stored) when it had already been rotated by a concurrent request."""
        rows = [
            [t.token_hash, t.grant_id, t.kind, t.created_at, t.expires_at, t.rotated_at]
            for t in successors
        ]
        with self._store.writing():  # the check and the writes see no other writer
            with self._store.cursor() as cur:
                used = cur.execute(
                    "SELECT rotated_at IS NULL FROM oauth_tokens WHERE token_hash = ?",
                    [token_hash],
                ).fetchone()
            if used is None or not used[0]:
                return False
            with self._store.writer() as cur:
                cur.execute(
                    "UPDATE oauth_tokens SET rotated_at = ? WHERE token_hash = ?", [at, token_hash]
                )
                cur.executemany(
                    "INSERT INTO oauth_tokens "
                    "(token_hash, grant_id, kind, created_at, expires_at, rotated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        return True

    def purge_expired(self, before: datetime) -> int:
        """Forget tokens that expired before ``before`` (their grants stay, for the record)."""
        with self._store.writer() as cur:
            rows = cur.execute(
                "DELETE FROM oauth_tokens WHERE expires_at < ? RETURNING token_hash", [before]
            ).fetchall()
        return len(rows)
