"""A small client for the one Directory API call group sync needs: ``groups.list`` for a user.

Authentication is the OAuth 2.0 JWT bearer grant (RFC 7523) Google uses for service
accounts: an RS256 assertion (``iss`` the service account, ``sub`` the Workspace admin it
acts for under domain-wide delegation, ``scope``, ``aud`` the key's ``token_uri``) is
posted to ``token_uri`` for an access token, kept until shortly before it expires.

Timeouts, 429, 5xx and the 403s Google sends for its rate limits are retried a few times
with backoff; anything else becomes a typed
:class:`~agnes_mcp.google_groups.errors.GroupSyncError` naming the HTTP status and the
endpoint. No message carries the key, the assertion or the access token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt

from agnes_mcp.google_groups.errors import (
    DirectoryRefused,
    DirectoryResponseInvalid,
    DirectoryUnavailable,
    GoogleTokenRefused,
)
from agnes_mcp.google_groups.service_account import ServiceAccountKey
from agnes_sync.retry import retry_after

SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PAGE_SIZE = 200  # the Directory API's largest page for groups.list
MAX_PAGES = 500
ASSERTION_SECONDS = 3600  # the longest lifetime Google accepts for an assertion
TOKEN_MARGIN_SECONDS = 60  # a cached token is renewed this long before it expires
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A Retry-After longer than this ends the retries (called sooner, Google refuses again);
# the sync is tried again later
LONGEST_WAIT_SECONDS = 10.0
# The Directory API's documented quota answers: 403s whose reason says "too fast", to be
# retried with exponential backoff (developers.google.com/admin-sdk/directory/v1/limits).
_RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"})


@dataclass(frozen=True)
class GoogleGroup:
    """One Google group a user is a direct member of."""

    email: str
    name: str


class DirectoryClient:
    def __init__(
        self,
        key: ServiceAccountKey,
        api_url: str,
        delegated_admin: str | None,
        *,
        timeout_seconds: float = 10.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._api_url = api_url.rstrip("/")
        self._subject = delegated_admin
        self._attempts = max(1, attempts)
        self._backoff = backoff_seconds
        self._stop = stop or threading.Event()
        self._clock = clock
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0)),
            follow_redirects=False,
            headers={"User-Agent": "agnes-group-sync"},
        )
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (access token, expires at)

    def close(self) -> None:
        self._http.close()

    # --- groups.list ---------------------------------------------------------------------

    def groups_of(self, email: str) -> list[GoogleGroup]:
        """Every group ``email`` is a direct member of, all pages followed."""
        endpoint = f"{self._api_url}/groups"
        groups: list[GoogleGroup] = []
        page_token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(MAX_PAGES):
            params = {"userKey": email, "maxResults": str(PAGE_SIZE)}
            if page_token:
                params["pageToken"] = page_token
            body = self._get_json(endpoint, params)
            groups.extend(_groups_of_page(body, endpoint))
            next_token = body.get("nextPageToken")
            if next_token is None or next_token == "":
                return groups
            if not isinstance(next_token, str) or next_token in seen_tokens:
                raise DirectoryResponseInvalid(
                    f"GET {endpoint} returned a nextPageToken that does not advance."
                )
            seen_tokens.add(next_token)
            page_token = next_token
        raise DirectoryResponseInvalid(f"GET {endpoint} returned more than {MAX_PAGES} pages.")

    def _get_json(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        response = self._send("GET", endpoint, params=params, auth=True)
        if response.status_code == 401:  # a token revoked early: get a fresh one, once
            self._forget_token()
            response = self._send("GET", endpoint, params=params, auth=True)
        if response.status_code != 200:
            raise DirectoryRefused(
                f"GET {endpoint} answered HTTP {response.status_code}{_google_reason(response)}.",
                details={"status": response.status_code, "endpoint": endpoint},
            )
        return _json_object(response, f"GET {endpoint}")

    # --- the access token ---------------------------------------------------------------

    def access_token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is not None and self._token[1] - TOKEN_MARGIN_SECONDS > now:
                return self._token[0]
            token, lifetime = self._fetch_token(now)
            self._token = (token, now + lifetime)
            return token

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    def _fetch_token(self, now: float) -> tuple[str, float]:
        endpoint = self._key.token_uri
        claims: dict[str, Any] = {
            "iss": self._key.client_email,
            "scope": SCOPE,
            "aud": endpoint,
            "iat": int(now),
            "exp": int(now) + ASSERTION_SECONDS,
        }
        if self._subject:
            claims["sub"] = self._subject
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if self._key.key_id:
            header["kid"] = self._key.key_id
        assertion = jwt.encode(header, claims, self._key.private_key)
        response = self._send(
            "POST", endpoint, data={"grant_type": JWT_BEARER, "assertion": assertion}, auth=False
        )
        if response.status_code != 200:
            raise GoogleTokenRefused(
                f"The token endpoint {endpoint} refused the service account "
                f"{self._key.client_email} (HTTP {response.status_code}"
                f"{_oauth_reason(response)}).",
                details={"status": response.status_code, "endpoint": endpoint},
            )
        body = _json_object(response, f"POST {endpoint}")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise DirectoryResponseInvalid(f"POST {endpoint} returned no access_token.")
        lifetime = body.get("expires_in", 3600)
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime <= 0:
            raise DirectoryResponseInvalid(f"POST {endpoint} returned an invalid expires_in.")
        return token, float(lifetime)

    # --- the wire, with retries ----------------------------------------------------------

    def _send(self, method: str, url: str, *, auth: bool, **kwargs: Any) -> httpx.Response:
        last = ""
        for attempt in range(1, self._attempts + 1):
            headers = {"Authorization": f"Bearer {self.access_token()}"} if auth else {}
            try:
                response = self._http.request(method, url, headers=headers, **kwargs)
            except httpx.TimeoutException:
                last, wait = "timed out", None
            except httpx.TransportError as exc:
                last, wait = f"could not be reached ({type(exc).__name__})", None
            else:
                if not _retried(response):
                    return response
                last = f"answered HTTP {response.status_code}{_google_reason(response)}"
                wait = _retry_after(response)
            if wait is not None and wait > LONGEST_WAIT_SECONDS:
                raise DirectoryUnavailable(
                    f"{method} {url} {last}; Google asked to wait {wait:.0f} s before "
                    "calling again.",
                    details={"endpoint": url, "retry_after_seconds": math.ceil(wait)},
                )
            if attempt < self._attempts:
                delay = wait if wait else self._backoff * 2 ** (attempt - 1)
                if self._stop.wait(delay):
                    break
        raise DirectoryUnavailable(
            f"{method} {url} {last} (after {self._attempts} attempts).",
            details={"endpoint": url},
        )


def _groups_of_page(body: dict[str, Any], endpoint: str) -> list[GoogleGroup]:
    items = body.get("groups", [])
    if not isinstance(items, list):
        raise DirectoryResponseInvalid(f"GET {endpoint} returned 'groups' that is not a list.")
    groups = []
    for item in items:
        email = item.get("email") if isinstance(item, dict) else None
        if not isinstance(email, str) or "@" not in email:
            raise DirectoryResponseInvalid(f"GET {endpoint} returned a group without an email.")
        name = item.get("name")
        groups.append(GoogleGroup(email=email.lower(), name=name if isinstance(name, str) else ""))
    return groups


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise DirectoryResponseInvalid(
            f"{what} answered HTTP {response.status_code} with a body that is not JSON."
        ) from None
    if not isinstance(body, dict):
        raise DirectoryResponseInvalid(f"{what} answered JSON that is not an object.")
    return body


def _retried(response: httpx.Response) -> bool:
    """Whether Google said the same call may work later: a 429 or 5xx, or a 403 whose
    reason is one of the documented rate limits."""
    if response.status_code in _RETRY_STATUSES:
        return True
    return response.status_code == 403 and _google_error_reason(response) in _RATE_LIMIT_REASONS


def _google_error_reason(response: httpx.Response) -> str | None:
    """The first ``reason`` of Google's error shape ``{"error": {"errors": [{"reason"}]}}``."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    errors = error.get("errors") if isinstance(error, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    reason = first.get("reason") if isinstance(first, dict) else None
    return reason if isinstance(reason, str) else None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a ``Retry-After`` asks for: delta-seconds or an HTTP date (RFC 9110)."""
    return retry_after(response.headers.get("Retry-After"))


def _clean(text: object, limit: int = 200) -> str:
    printable = "".join(c if c.isprintable() else " " for c in str(text))
    return printable[:limit]


def _google_reason(response: httpx.Response) -> str:
    """``: <message>`` from Google's error shape ``{"error": {"message": ...}}``, if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f": {_clean(message)}" if isinstance(message, str) and message else ""


def _oauth_reason(response: httpx.Response) -> str:
    """``: invalid_grant (description)`` from an OAuth error response (RFC 6749 §5.2)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return ""
    description = body.get("error_description")
    extra = f" — {_clean(description)}" if isinstance(description, str) and description else ""
    return f": {_clean(body['error'], 60)}{extra}"
