"""The OpenID Connect provider: discovery, the authorization URL, the code exchange and
ID token verification.

authlib's OAuth 2 client builds the authorization URL (with PKCE S256) and exchanges
the code; joserfc verifies the ID token against the provider's JWKS. Discovery and
keys are fetched with httpx's async client (the event loop never waits on the
network) and cached for ``CACHE_SECONDS``; an unknown key id refetches the keys once.
Messages name what failed (the step, the URL, the HTTP status), never the client
secret or a token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from agnes_mcp.settings import GOOGLE_DISCOVERY_URL, AgnesSettings
from agnes_mcp.signin.jwks import usable_key_set
from agnes_mcp.signin.problems import ProviderUnavailable, SignInNotConfigured, SignInRefused
from agnes_mcp.signin.provider_deadline import answer_deadline, read_capped


def _http_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(status errors, all HTTP errors) of httpx and of httpx2, which authlib's client
    is built on when it is installed."""
    status: list[type[Exception]] = [httpx.HTTPStatusError]
    every: list[type[Exception]] = [httpx.HTTPError]
    try:
        import httpx2
    except ImportError:  # pragma: no cover - depends on what else is installed
        pass
    else:
        status.append(httpx2.HTTPStatusError)
        every.append(httpx2.HTTPError)
    return tuple(status), tuple(every)


_STATUS_ERRORS, _HTTP_ERRORS = _http_errors()

logger = logging.getLogger("agnes.signin")

CACHE_SECONDS = 3600.0
HTTP_TIMEOUT = 10.0
LEEWAY_SECONDS = 60
SCOPES = "openid email profile"
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
CALLBACK_PATH = "/auth/oidc/callback"
WELL_KNOWN = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    client_auth: str = "client_secret_basic"
    userinfo_endpoint: str | None = None


# The claims sign-in reads that a provider may keep out of the ID token and give only at
# its UserInfo endpoint (OpenID Connect Core 1.0 section 5.4: with the code flow, the
# claims of the email and profile scopes come from the UserInfo endpoint).
USERINFO_CLAIMS = ("email", "email_verified", "name")


@dataclass(frozen=True)
class TokenAnswer:
    id_token: str
    access_token: str | None


# How the client secret reaches the token endpoint, in our order of preference. Discovery
# lists what the provider takes (``token_endpoint_auth_methods_supported``; absent means
# ``client_secret_basic``, OpenID Connect Discovery 1.0 section 3).
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def _basic_credentials(
    auth: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    """``client_secret_basic`` as RFC 6749 section 2.3.1 has it: the id and the secret each
    form-urlencoded, then joined by ':' and base64-encoded. (authlib sends them raw, in
    Latin-1: a '+' or '%' in a secret reached the provider as another secret.)"""
    pair = f"{quote_plus(auth.client_id, safe='')}:{quote_plus(auth.client_secret, safe='')}"
    headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return uri, headers, body


def _token_auth_method(document: dict[str, Any], url: str) -> str:
    offered = document.get("token_endpoint_auth_methods_supported")
    if offered is None:
        return TOKEN_AUTH_METHODS[0]
    if isinstance(offered, list):
        for method in TOKEN_AUTH_METHODS:
            if method in offered:
                return method
    listed = ", ".join(str(m)[:40] for m in offered) if isinstance(offered, list) else "?"
    raise ProviderUnavailable(
        f"The provider's discovery document ({url}) takes the client secret only as "
        f"{listed or 'nothing'}; this server sends it as {' or '.join(TOKEN_AUTH_METHODS)}."
    )


def _endpoint(document: dict[str, Any], key: str, url: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ProviderUnavailable(
            f"The provider's discovery document ({url}) has no valid '{key}'."
        )
    return value


def parse_discovery(document: object, url: str) -> ProviderMetadata:
    if not isinstance(document, dict):
        raise ProviderUnavailable(
            f"The provider's discovery document ({url}) is not a JSON object."
        )
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise ProviderUnavailable(f"The provider's discovery document ({url}) names no issuer.")
    if url.endswith(WELL_KNOWN) and issuer.rstrip("/") != url.removesuffix(WELL_KNOWN):
        # OpenID Connect Discovery 1.0 section 4.3: the issuer MUST be the URL the document
        # was fetched under; another one is another provider's document (or a mix-up)
        raise ProviderUnavailable(
            f"The provider's discovery document ({url}) names the issuer {issuer[:200]}, "
            "not the URL it was fetched from.",
            hint="Set auth.oidc.discovery_url to <issuer>/.well-known/openid-configuration "
            "of the provider you mean.",
        )
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=_endpoint(document, "authorization_endpoint", url),
        token_endpoint=_endpoint(document, "token_endpoint", url),
        jwks_uri=_endpoint(document, "jwks_uri", url),
        client_auth=_token_auth_method(document, url),
        userinfo_endpoint=(
            _endpoint(document, "userinfo_endpoint", url)
            if document.get("userinfo_endpoint") is not None
            else None
        ),
    )


class OidcProvider:
    def __init__(
        self,
        settings: AgnesSettings,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: tuple[float, KeySet] | None = None
        self._lock: asyncio.Lock | None = None

    # --- settings ---------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        return str(self._settings.auth.oidc.discovery_url)

    @property
    def is_google(self) -> bool:
        return self.discovery_url.rstrip("/") == GOOGLE_DISCOVERY_URL

    @property
    def redirect_uri(self) -> str:
        return self._settings.base_url + CALLBACK_PATH

    def _credentials(self) -> tuple[str, str]:
        oidc = self._settings.auth.oidc
        if not oidc.client_id:
            raise SignInNotConfigured("Sign-in with a provider is not set up on this server.")
        secret = os.environ.get(oidc.client_secret_env, "")
        if not secret:
            raise SignInNotConfigured(
                f"The OIDC client secret is missing: ${oidc.client_secret_env} is unset."
            )
        return oidc.client_id, secret

    def _client(self, meta: ProviderMetadata) -> AsyncOAuth2Client:
        client_id, secret = self._credentials()
        client = AsyncOAuth2Client(
            client_id=client_id,
            client_secret=secret,
            token_endpoint_auth_method=meta.client_auth,
            scope=SCOPES,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT,
        )
        client.register_client_auth_method(("client_secret_basic", _basic_credentials))
        return client

    # --- discovery and keys ----------------------------------------------------------

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _get_json(self, what: str, url: str) -> object:
        try:
            async with (
                answer_deadline(what, url),
                httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                body = await read_capped(response, what, url)
        except httpx.HTTPError as exc:
            logger.warning("OIDC %s at %s failed: %s", what, url, type(exc).__name__)
            raise ProviderUnavailable(
                f"Could not reach the sign-in provider: fetching its {what} ({url}) failed "
                f"({type(exc).__name__})."
            ) from None
        if response.status_code != 200:
            raise ProviderUnavailable(
                f"The sign-in provider's {what} ({url}) answered HTTP {response.status_code}."
            )
        try:
            return json.loads(body)
        except ValueError:
            raise ProviderUnavailable(
                f"The sign-in provider's {what} ({url}) is not valid JSON."
            ) from None

    async def metadata(self) -> ProviderMetadata:
        """The discovery document (cached; a failure is not cached)."""
        async with self._guard():
            now = self._clock()
            if self._metadata is not None and now - self._metadata[0] < self._cache_seconds:
                return self._metadata[1]
            url = self.discovery_url
            found = parse_discovery(await self._get_json("discovery document", url), url)
            self._metadata = (now, found)
            return found

    async def keys(self, *, refresh: bool = False) -> KeySet:
        meta = await self.metadata()
        async with self._guard():
            now = self._clock()
            if not refresh and self._keys is not None and now - self._keys[0] < self._cache_seconds:
                return self._keys[1]
            document = await self._get_json("signing keys (JWKS)", meta.jwks_uri)
            keys = usable_key_set(document)
            if keys is None:
                raise ProviderUnavailable(
                    f"The sign-in provider's signing keys ({meta.jwks_uri}) are not a valid "
                    "JWKS, or hold no key this server can verify a signature with."
                )
            self._keys = (now, keys)
            return keys

    # --- the flow ---------------------------------------------------------------------

    async def authorization_url(
        self, *, state: str, nonce: str, code_verifier: str, login_hint_domain: str | None
    ) -> str:
        self._credentials()  # not set up: say so before reaching out to the provider
        meta = await self.metadata()
        extra: dict[str, str] = {"nonce": nonce}
        if login_hint_domain and self.is_google:
            extra["hd"] = login_hint_domain  # Google's account chooser shows only this domain
        async with self._client(meta) as client:
            url, _ = client.create_authorization_url(
                meta.authorization_endpoint, state=state, code_verifier=code_verifier, **extra
            )
        return str(url)

    async def exchange(self, code: str, code_verifier: str) -> TokenAnswer:
        """The ID token (and access token) the token endpoint returns for ``code``."""
        self._credentials()
        meta = await self.metadata()
        try:
            async with (
                answer_deadline("token endpoint", meta.token_endpoint),
                self._client(meta) as client,
            ):
                token = await client.fetch_token(
                    meta.token_endpoint, code=code, code_verifier=code_verifier
                )
        except OAuthError as exc:
            raise ProviderUnavailable(
                f"The sign-in provider's token endpoint refused the code ({str(exc.error)[:100]})."
            ) from None
        except _STATUS_ERRORS as exc:
            raise ProviderUnavailable(
                f"The sign-in provider's token endpoint ({meta.token_endpoint}) answered "
                f"HTTP {getattr(getattr(exc, 'response', None), 'status_code', '?')}."
            ) from None
        except _HTTP_ERRORS as exc:
            raise ProviderUnavailable(
                f"Could not reach the sign-in provider's token endpoint ({meta.token_endpoint}): "
                f"{type(exc).__name__}."
            ) from None
        except ValueError:
            raise ProviderUnavailable(
                f"The sign-in provider's token endpoint ({meta.token_endpoint}) answered "
                "something that is not a token response."
            ) from None
        id_token = token.get("id_token") if isinstance(token, dict) else None
        if not isinstance(id_token, str) or not id_token:
            raise ProviderUnavailable("The sign-in provider's token response has no ID token.")
        access = token.get("access_token")
        return TokenAnswer(id_token, access if isinstance(access, str) and access else None)

    async def with_userinfo(
        self, claims: dict[str, Any], access_token: str | None
    ) -> dict[str, Any]:
        """``claims`` completed from the UserInfo endpoint when the ID token lacks the
        address or whether it is verified. The answer counts only if its ``sub`` is the ID token's
        (OpenID Connect Core 1.0 section 5.3.4); the ID token's own claims stay."""
        if all(claims.get(name) is not None for name in USERINFO_CLAIMS[:2]):
            return claims  # the name alone is not worth a call that could fail
        meta = await self.metadata()
        if meta.userinfo_endpoint is None or access_token is None:
            return claims
        url = meta.userinfo_endpoint
        try:
            async with (
                answer_deadline("userinfo endpoint", url),
                httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client,
                client.stream(
                    "GET",
                    url,
                    headers={
                        "Accept": "application/json",
                        "Authorization": f"Bearer {access_token}",
                    },
                ) as response,
            ):
                body = await read_capped(response, "userinfo endpoint", url)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"Could not reach the sign-in provider's userinfo endpoint ({url}): "
                f"{type(exc).__name__}."
            ) from None
        if response.status_code != 200:
            raise ProviderUnavailable(
                f"The sign-in provider's userinfo endpoint ({url}) answered "
                f"HTTP {response.status_code}."
            )
        try:
            info = json.loads(body)
        except ValueError:
            info = None
        if not isinstance(info, dict):
            raise ProviderUnavailable(
                f"The sign-in provider's userinfo endpoint ({url}) answered something that "
                "is not a JSON object."
            )
        if info.get("sub") != claims.get("sub"):
            raise SignInRefused("The provider's userinfo is about another person ('sub').")
        found = {k: info[k] for k in USERINFO_CLAIMS if info.get(k) is not None}
        own = claims.get("email")
        if own is not None and str(found.get("email", "")).lower() != str(own).lower():
            found.pop("email_verified", None)  # it vouches for another address
        return found | {k: v for k, v in claims.items() if v is not None}

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's JWKS), ``iss``,
        ``aud``, ``exp`` and ``nonce`` check out; else :class:`SignInRefused`."""
        meta = await self.metadata()
        client_id, _ = self._credentials()
        keys = await self.keys()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except InvalidKeyIdError:  # the provider rotated its keys: read them again
                token = jwt.decode(id_token, await self.keys(refresh=True), algorithms=ALGORITHMS)
        except (BadSignatureError, InvalidKeyIdError):
            raise SignInRefused(
                "The ID token's signature does not match the provider's published keys."
            ) from None
        except (JoseError, ValueError):
            raise SignInRefused(
                "The ID token is malformed or uses an algorithm not allowed."
            ) from None
        issuers = [meta.issuer]
        if self.is_google:
            issuers.append("accounts.google.com")  # Google issues both forms
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "values": issuers},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        claims = token.claims
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise SignInRefused("The ID token has expired.") from None
        except MissingClaimError as exc:
            raise SignInRefused(f"The ID token lacks the claim(s) '{exc.claim}'.") from None
        except InvalidClaimError as exc:
            raise SignInRefused(f"The ID token's '{exc.claim}' claim is wrong.") from None
        except JoseError:
            raise SignInRefused("The ID token's claims are not valid.") from None
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
            raise SignInRefused("The ID token was issued to another client ('azp').")
        return claims
