"""A Google service account's JSON key, read from the environment variable the settings
name. The key is held in memory only: never stored, logged or put in a message (an error
names the variable and what is wrong with it, not its content)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from joserfc.jwk import RSAKey

from agnes_mcp.google_groups.errors import GroupSyncDisabled

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL


@dataclass(frozen=True)
class ServiceAccountKey:
    client_email: str
    token_uri: str
    key_id: str | None
    private_key: RSAKey = field(repr=False)

    def __repr__(self) -> str:  # the private key never reaches a log line
        return (
            f"ServiceAccountKey(client_email={self.client_email!r}, token_uri={self.token_uri!r})"
        )


def load_service_account(env_name: str) -> ServiceAccountKey:
    """Parse the key in ``$env_name``; :class:`GroupSyncDisabled` says what is wrong."""
    raw = os.environ.get(env_name, "")
    if not raw.strip():
        raise GroupSyncDisabled(
            f"auth.google_groups.credentials_env names ${env_name}, which is unset or empty."
        )
    try:
        data = json.loads(raw)
    except ValueError:
        raise GroupSyncDisabled(
            f"${env_name} does not hold JSON (expected a service account's JSON key)."
        ) from None
    if not isinstance(data, dict):
        raise GroupSyncDisabled(f"${env_name} holds JSON that is not a service account key.")
    if data.get("type", "service_account") != "service_account":
        raise GroupSyncDisabled(
            f"${env_name} holds a key of type '{_short(data.get('type'))}', not 'service_account'."
        )
    missing = [k for k in ("client_email", "private_key") if not isinstance(data.get(k), str)]
    if missing:
        raise GroupSyncDisabled(
            f"${env_name} is not a service account key: it has no {' or '.join(missing)}."
        )
    token_uri = data.get("token_uri") or GOOGLE_TOKEN_URI
    if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
        raise GroupSyncDisabled(f"${env_name} has a token_uri that is not an http(s) URL.")
    try:
        private_key = RSAKey.import_key(data["private_key"])
    except Exception:  # noqa: BLE001 - any parse failure: the message must not echo the key
        raise GroupSyncDisabled(
            f"${env_name} has a private_key that is not a PEM-encoded RSA private key."
        ) from None
    if not private_key.is_private:
        raise GroupSyncDisabled(f"${env_name} has a public key where the private key belongs.")
    key_id = data.get("private_key_id")
    return ServiceAccountKey(
        client_email=data["client_email"],
        token_uri=token_uri,
        key_id=key_id if isinstance(key_id, str) and key_id else None,
        private_key=private_key,
    )


def _short(value: object) -> str:
    return str(value)[:40]
