"""The Keboola Storage API over httpx: the token header, retries that honour ``Retry-After``,
and failures tagged for the sync engine.

The token is read from the environment variable named by ``token_env`` at each call (a
rotated token is picked up without a restart) and sent only as ``X-StorageApi-Token`` to
the stack; it is never put in a URL, a log line or an error message. Files are fetched
from the signed URLs Keboola hands out with a second client that carries no token; their
signatures are credentials too, kept out of messages and out of httpx's request log.

- 429, 5xx and network errors (any failure of the request: a redirect loop on a signed
  URL, a body that does not decode): retried ``attempts`` times, waiting ``Retry-After`` when the
  answer has one (else exponential backoff), then :class:`TransientSyncError`;
- 401/403: :class:`TokenRefused` (terminal), naming the variable and the bucket;
- 404: :class:`SourceTableNotFound`; other 4xx: :class:`TerminalSyncError` with Keboola's
  message;
- 3xx: not followed (the token header would go along), a :class:`TerminalSyncError` naming
  the origin the stack points to (``http://`` redirected to ``https://``, a moved stack).

Not the official ``kbcstorage`` SDK: it downloads slices into the process's working
directory, which a server running syncs on several threads cannot share.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from agnes_sync.errors import SourceTableNotFound, TerminalSyncError, TransientSyncError
from agnes_sync.http_deadline import answer_deadline, progress_deadline
from agnes_sync.retry import pause_before_retry
from agnes_sync.retry import retry_after as header_retry_after

CHUNK = 1 << 20  # bytes per write while streaming a download to disk
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
MAX_BACKOFF = 30.0


class TokenRefused(TerminalSyncError):
    """Keboola answered 401/403: the token expired, was revoked or lacks access."""

    code = "source_token_refused"


class StorageClient:
    """One stack's Storage API; safe to share between threads (httpx's pool is)."""

    def __init__(
        self,
        url: str,
        token_env: str,
        *,
        attempts: int = 5,
        timeout: float = 60,
        max_retry_after: float = 120,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.token_env = token_env
        self.attempts = attempts
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        self._deadline = answer_deadline(timeout)
        self._api = httpx.Client(
            base_url=url,
            timeout=timeout,
            limits=limits,
            event_hooks={"response": [self._deadline]},
        )
        # A slice may rightly take long, but must bring a chunk every `timeout` seconds;
        # a manifest read through this client gets the API's whole-answer deadline too.
        self._files = httpx.Client(
            timeout=timeout,
            limits=limits,
            follow_redirects=True,
            event_hooks={"response": [progress_deadline(timeout, CHUNK)]},
        )

    def close(self) -> None:
        self._api.close()
        self._files.close()

    # --- the API -----------------------------------------------------------------------

    def token(self) -> str:
        value = os.environ.get(self.token_env, "").strip()
        if not value:
            raise TokenRefused(
                f"The environment variable {self.token_env} (token_env) is not set.",
                hint=f"Set {self.token_env} to a Keboola Storage API token for the server.",
            )
        return value

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, bucket: str | None = None
    ) -> Any:
        return self._call("GET", path, params=params, bucket=bucket)

    def post(self, path: str, body: Mapping[str, Any], bucket: str | None = None) -> Any:
        return self._call("POST", path, json=body, bucket=bucket)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        bucket: str | None = None,
    ) -> Any:
        token = self.token()
        headers = {"X-StorageApi-Token": token, "Accept": "application/json"}
        what = f"{method} {path}"
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._api.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.RequestError as exc:  # a redirect loop, a bad body too
                self._again(attempt, f"{what} failed ({type(exc).__name__})", None)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                message = _message(response, token)
                self._again(attempt, f"Keboola answered {status} to {what}: {message}", response)
                continue
            if 300 <= status < 400:
                raise self._redirected(what, response)
            if status in (401, 403):
                raise self._refused(status, _message(response, token), bucket)
            if status == 404:
                raise SourceTableNotFound(
                    f"Keboola has no such object ({what}): {_message(response, token)}",
                    hint="List what the token can see with `agnes admin source-tables <source>`.",
                )
            if status >= 400:
                raise TerminalSyncError(
                    f"Keboola refused {what} ({status}): {_message(response, token)}",
                    details={"status": status},
                )
            try:
                return response.json()
            except ValueError:  # cut off, or a proxy's page: worth another try
                raise TransientSyncError(
                    f"Keboola answered {what} with something that is not JSON "
                    f"({response.headers.get('content-type', 'no content type')})."
                ) from None
        raise AssertionError("unreachable")

    def _redirected(self, what: str, response: httpx.Response) -> TerminalSyncError:
        """A redirect is not followed: the token header would go along to wherever it
        points. The stack moved (or ``http`` became ``https``): the url option says where."""
        target = urlsplit(response.headers.get("location", ""))
        base = f"{target.scheme}://{target.netloc}" if target.scheme and target.netloc else ""
        where = f" to {base}" if base else ""
        return TerminalSyncError(
            f"Keboola at {self.url} redirected {what}{where} ({response.status_code}); "
            "the token is not sent after a redirect.",
            hint=f"Set the source's url option to {base}."
            if base and base != self.url
            else "Set the source's url option to the stack's https URL, without a path.",
            details={"status": response.status_code, "location": base or None},
        )

    def _refused(self, status: int, message: str, bucket: str | None) -> TokenRefused:
        scope = f"lacks access to bucket {bucket}" if bucket else "lacks access to this call"
        return TokenRefused(
            f"The token in ${self.token_env} was refused (expired, or {scope}): "
            f"Keboola answered {status}: {message}",
            hint=f"Give the token in ${self.token_env} read access to the bucket, or replace it.",
            details={"status": status, "token_env": self.token_env, "bucket": bucket},
        )

    def _again(self, attempt: int, problem: str, response: httpx.Response | None) -> None:
        """Wait before the next attempt, or raise once attempts are used up. The error
        carries the stack's ``Retry-After`` (a maintenance says when it ends): nothing
        calls again before then."""
        asked = retry_after(response) if response is not None else None
        details = {"retry_after_seconds": math.ceil(asked)} if asked else None
        if attempt >= self.attempts:
            raise TransientSyncError(
                f"{problem} (after {attempt} attempt{'s' if attempt > 1 else ''}).",
                hint="Keboola is busy or unreachable; the sync is retried later.",
                details=details,
            )
        if asked is not None and asked > self.max_retry_after:
            raise TransientSyncError(
                f"{problem}; Keboola asked to retry after {asked:.0f} s, longer than "
                f"max_retry_after_seconds ({self.max_retry_after:.0f} s).",
                hint="The stack may be under maintenance; the sync is retried after the "
                "wait Keboola asked for.",
                details=details,
            )
        self.sleep(pause_before_retry(asked, min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1))))

    # --- files -------------------------------------------------------------------------

    def fetch_json(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        """A small JSON document (a slice manifest) from a signed URL."""
        for attempt in range(1, self.attempts + 1):
            try:
                with self._files.stream("GET", url, headers=headers) as response:
                    self._deadline(response)  # small, as an API answer: the same deadline
                    response.read()
            except httpx.RequestError as exc:  # a redirect loop, a bad body too
                self._again(attempt, f"fetching {_where(url)} failed ({type(exc).__name__})", None)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                self._again(attempt, f"{_where(url)} answered {response.status_code}", response)
                continue
            _file_status(response, url)
            try:
                return response.json()
            except ValueError:
                raise TransientSyncError(f"The manifest at {_where(url)} is not JSON.") from None
        raise AssertionError("unreachable")

    def download(
        self,
        url: str,
        target: Path,
        headers: Mapping[str, str] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Stream the object at ``url`` to ``target``; returns the bytes written. What
        lands is the object, and compressed where it can be: a ``Content-Encoding: gzip``
        (S3 metadata on a ``.csv.gz``, a proxy's or a CDN's) is kept as sent, since the
        readers read gzip CSV as it is (decoding it put the whole CSV on disk, several
        times the size); only a layer over what is compressed already (a gzip again,
        a parquet) is undone (:func:`unwrap_transport_gzip`). ``stop`` set (another slice
        failed) abandons the download between chunks."""
        for attempt in range(1, self.attempts + 1):
            try:
                with self._files.stream("GET", url, headers=headers) as response:
                    if response.status_code == 429 or response.status_code >= 500:
                        response.read()
                        self._again(
                            attempt, f"{_where(url)} answered {response.status_code}", response
                        )
                        continue
                    _file_status(response, url)
                    encoding = response.headers.get("content-encoding", "").strip().lower()
                    raw = encoding in ("gzip", "x-gzip")
                    chunks = response.iter_raw(CHUNK) if raw else response.iter_bytes(CHUNK)
                    written = 0
                    with target.open("wb") as out:
                        for chunk in chunks:
                            if stop is not None and stop.is_set():
                                raise TransientSyncError("Download abandoned: another failed.")
                            out.write(chunk)
                            written += len(chunk)
                if raw:
                    written = unwrap_transport_gzip(target, written)
                return written
            except httpx.RequestError as exc:  # a redirect loop, a bad body too
                self._again(
                    attempt, f"downloading {_where(url)} failed ({type(exc).__name__})", None
                )
        raise AssertionError("unreachable")


def unwrap_transport_gzip(path: Path, size: int) -> int:
    """``path`` (a body kept as its ``Content-Encoding: gzip`` sent it) as the readers can
    take it; returns its size. Gzip over CSV stays (read as it is); gzip over what is
    compressed already (a ``.csv.gz`` compressed again, a parquet) loses that layer. A
    body that is no whole gzip stream stays as it came: the reader says it is damaged."""
    try:
        with gzip.open(path, "rb") as inner:
            head = inner.read(4)
    except (OSError, EOFError):
        return size
    if not (head.startswith(_GZIP_MAGIC) or head == _PARQUET_MAGIC):
        return size
    unpacked = path.with_name(path.name + ".unpacked")
    try:
        with gzip.open(path, "rb") as inner, unpacked.open("wb") as out:
            shutil.copyfileobj(inner, out, CHUNK)
    except (OSError, EOFError):
        unpacked.unlink(missing_ok=True)
        return size
    unpacked.replace(path)
    return path.stat().st_size


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), a day at most."""
    return header_retry_after(response.headers.get("retry-after"))


def _message(response: httpx.Response, token: str) -> str:
    """Keboola's error text (``{"error": ..., "code": ...}``), never echoing the token."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    else:
        text = ""
        if isinstance(body, dict):
            text = str(body.get("error") or body.get("message") or body.get("reason") or "")
    text = text or response.reason_phrase or "no message"
    return text.replace(token, "***") if token else text


_SIGNATURES = ("x-amz-signature=", "x-amz-credential=", "x-goog-signature=", "sig=")


class _SignedUrls(logging.Filter):
    """httpx logs every request's URL at INFO (``HTTP Request: GET <url> ...``); a signed
    file URL's query (S3, GCS, an Azure SAS) is a credential for hours: logged without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                _where(str(a)) if isinstance(a, httpx.URL) and _signed(a) else a
                for a in record.args
            )
        return True


def _signed(url: httpx.URL) -> bool:
    query = url.query.decode(errors="replace").lower()
    return any(part in query for part in _SIGNATURES)


def _hide_signatures_from(logger_name: str) -> None:
    target = logging.getLogger(logger_name)
    if not any(isinstance(f, _SignedUrls) for f in target.filters):
        target.addFilter(_SignedUrls())


_hide_signatures_from("httpx")


def _where(url: str) -> str:
    """A signed URL without its query string (the signature is a credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _file_status(response: httpx.Response, url: str) -> None:
    if response.status_code < 400:
        return
    response.read()
    # An expired or refused signed URL is fixed by a new export (new URLs): transient.
    raise TransientSyncError(
        f"Downloading the export from {_where(url)} failed ({response.status_code}).",
        hint="The signed URL may have expired; the sync is retried with a new export.",
    )
