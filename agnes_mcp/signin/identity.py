"""Who an ID token says the person is, and whether this instance lets them in.

Pure checks over claims whose signature, issuer, audience, expiry and nonce were
already verified (:mod:`agnes_mcp.signin.oidc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agnes_mcp.signin.problems import SignInRefused


@dataclass(frozen=True)
class Identity:
    email: str
    name: str | None
    subject: str


def identity_from_claims(
    claims: dict[str, Any], domains: list[str], *, require_hd: bool
) -> Identity:
    """The verified person, or :class:`SignInRefused` saying what is wrong.

    ``email_verified`` must be true; the e-mail's domain must be one of ``domains``;
    the ``hd`` (hosted domain) claim, when present, too, and it must be present when
    ``require_hd`` (Google: an account outside Workspace has no ``hd``).
    """
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SignInRefused(
            "The provider did not say which e-mail address you signed in with.",
            hint="Ask an admin to request the 'email' scope from the provider.",
        )
    email = email.strip().lower()
    verified = claims.get("email_verified")
    if verified is not True and verified != "true":
        raise SignInRefused(
            f"The provider has not verified the address {email}.",
            hint="Verify the address with your provider, then sign in again.",
        )
    allowed = ", ".join(domains)
    domain = email.rsplit("@", 1)[1]
    if domain not in domains:
        raise SignInRefused(
            f"Accounts of {domain} may not sign in here (allowed: {allowed}).",
            hint="Sign in with your company account.",
        )
    hosted = claims.get("hd")
    if hosted is None and require_hd:
        raise SignInRefused(
            "This is not a company (Workspace) account: the provider gave no hosted domain.",
            hint="Sign in with your company account.",
        )
    if hosted is not None and (not isinstance(hosted, str) or hosted.lower() not in domains):
        raise SignInRefused(
            f"The account belongs to the organisation {str(hosted)[:100]}, not to {allowed}.",
            hint="Sign in with your company account.",
        )
    name = claims.get("name")
    subject = claims.get("sub")
    return Identity(
        email=email,
        name=(name.strip()[:200] or None) if isinstance(name, str) else None,
        subject=subject if isinstance(subject, str) else "",
    )
