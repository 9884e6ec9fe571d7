"""The signing keys of a provider's JWK set that this client can use.

RFC 7517 §5: a JWK set may hold keys the client does not understand (another key type,
a curve it lacks, a parameter it cannot read), and those are to be ignored. Read as one
unit, one such key made the whole set "not valid", and nobody could sign in though the
key that signs the ID tokens was there. Each key is read alone; the unusable ones are
skipped (and logged, by ``kid`` only), and only a set with no usable key is refused.
"""

from __future__ import annotations

import logging
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet

logger = logging.getLogger("agnes.signin")


def usable_key_set(document: object) -> KeySet | None:
    """The keys of ``document`` (a JWKS) that can verify a signature; None when it is no
    JWK set or holds no such key."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return None
    keys: list[Any] = []
    skipped: list[str] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            skipped.append(_kid(entry))
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError, KeyError):
            skipped.append(_kid(entry))
    if skipped:
        logger.warning(
            "Skipped %d key(s) of the sign-in provider's JWKS this server cannot use "
            "(kid: %s); signing in uses the other %d.",
            len(skipped),
            ", ".join(skipped),
            len(keys),
        )
    return KeySet(keys) if keys else None


def _kid(entry: object) -> str:
    """How a skipped key is named in the log: its ``kid`` (never its material)."""
    kid = entry.get("kid") if isinstance(entry, dict) else None
    return repr(kid[:64]) if isinstance(kid, str) else "none"
