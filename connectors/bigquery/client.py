"""Building a BigQuery client from source options (the library is imported lazily: ~0.5 s).

Credentials are never in the settings: ``credentials_env`` names an environment variable
holding either a path to a service-account key file or the key's JSON. Without it the
library's default credentials are used. ``api_endpoint`` (with ``anonymous: true``) points
the client at another server speaking the same REST API, e.g. an emulator or the tests'.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agnes_sync.env_names import EnvName
from agnes_sync.errors import InvalidTableSpec
from agnes_sync.url_host import url_host_problem

if TYPE_CHECKING:
    from google.cloud import bigquery


class BigQueryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,61}[a-z0-9]$", description="Project id.")
    location: str | None = Field(default=None, description="Job location, e.g. 'EU'.")
    alias: str = Field(default="bq", pattern=r"^[a-z_][a-z0-9_]*$", description="Path alias.")
    credentials_env: EnvName | None = Field(
        default=None, description="Env var holding a key file path or the key's JSON."
    )
    api_endpoint: str | None = Field(default=None, description="Override the API endpoint.")

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value.strip()).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL, e.g. https://bigquery.googleapis.com")
        problem = url_host_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()

    anonymous: bool = Field(default=False, description="No credentials (emulators only).")
    job_timeout_seconds: float = Field(
        default=3600,
        gt=0,
        description="How long a materialized table's query may run before its sync fails "
        "(BigQuery stops the job).",
    )
    http_timeout_seconds: float = Field(
        default=60, gt=0, description="Timeout of one API request made by a sync."
    )


def make_client(options: BigQueryOptions) -> bigquery.Client:
    import requests
    from google.cloud import bigquery

    credentials: Any = None
    if options.anonymous:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    elif options.credentials_env:
        credentials = _service_account(options.credentials_env)
    client_options = {"api_endpoint": options.api_endpoint} if options.api_endpoint else None
    client = bigquery.Client(
        project=options.project,
        credentials=credentials,
        location=options.location,
        client_options=client_options,
    )
    adapter = answer_deadline_adapter(options.http_timeout_seconds)
    session = client._http
    for prefix in ("https://", "http://"):
        # the plain adapters only: a mutual-TLS one (GOOGLE_API_USE_CLIENT_CERTIFICATE)
        # carries the client certificate, and stays
        if type(session.adapters.get(prefix)) is requests.adapters.HTTPAdapter:
            session.mount(prefix, adapter)
    return client


def answer_deadline_adapter(seconds: float) -> Any:
    """A ``requests`` transport adapter whose answers' bodies must arrive within
    ``seconds`` of their headers. The library's ``timeout`` bounds each read: an answer
    trickling in (a byte now and then, from a stalled proxy) was read for as long as it
    trickled, far past ``http_timeout_seconds``. Past the deadline it raises
    ``requests.exceptions.ReadTimeout``, which the library retries within its deadline."""
    import time

    import requests
    import urllib3

    class _Deadline(requests.adapters.HTTPAdapter):
        def send(
            self,
            request: requests.PreparedRequest,
            stream: bool = False,
            timeout: float | tuple[float | None, float | None] | None = None,
            verify: bool | str = True,
            cert: str | tuple[str, str] | None = None,
            proxies: dict[str, str] | None = None,
        ) -> requests.Response:
            response = super().send(request, True, timeout, verify, cert, proxies)
            if stream:
                return response
            deadline = time.monotonic() + seconds
            chunks: list[bytes] = []
            try:
                # read1: one read of the socket at a time (a read of 64 KiB waits for all of
                # them, or the end, however slowly they come)
                while chunk := response.raw.read1(1 << 16, decode_content=True):
                    if time.monotonic() > deadline:
                        raise requests.exceptions.ReadTimeout(
                            f"the answer had not fully arrived {seconds:g} s after its headers",
                            request=request,
                        )
                    chunks.append(chunk)
            except urllib3.exceptions.ProtocolError as exc:  # as requests' own reads say it
                response.close()
                raise requests.exceptions.ChunkedEncodingError(exc) from exc
            except urllib3.exceptions.DecodeError as exc:
                response.close()
                raise requests.exceptions.ContentDecodingError(exc) from exc
            except urllib3.exceptions.ReadTimeoutError as exc:
                response.close()
                raise requests.exceptions.ConnectionError(exc) from exc
            except urllib3.exceptions.SSLError as exc:
                response.close()
                raise requests.exceptions.SSLError(exc) from exc
            except BaseException:
                response.close()
                raise
            response._content = b"".join(chunks)
            response.close()  # the body is read: the connection goes back to the pool
            return response

    return _Deadline()


def _service_account(variable: str) -> Any:
    from google.oauth2 import service_account

    value = os.environ.get(variable)
    if not value:
        raise InvalidTableSpec(
            f"The environment variable {variable} (credentials_env) is not set.",
            hint="Set it to the path of a service-account key file, or to the key's JSON.",
        )
    scopes = ["https://www.googleapis.com/auth/bigquery"]
    try:
        if value.lstrip().startswith("{"):
            info = json.loads(value)
            return service_account.Credentials.from_service_account_info(info, scopes=scopes)
        return service_account.Credentials.from_service_account_file(value, scopes=scopes)
    except (ValueError, KeyError, OSError):  # never echo the value: it is a secret
        raise InvalidTableSpec(
            f"The environment variable {variable} does not hold a usable service-account key.",
            hint="Set it to the path of a service-account key file, or to the key's JSON.",
        ) from None


def bounded_retries(seconds: float, *, jobs: bool = False) -> dict[str, Any]:
    """The client library's retries (10 minutes by default; 40 for a job's) cut to
    ``seconds``, and each request's timeout too."""
    from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY

    if jobs:  # a query: the caller gives the per-request timeout
        return {
            "retry": DEFAULT_RETRY.with_deadline(seconds),
            "job_retry": DEFAULT_JOB_RETRY.with_deadline(seconds),
        }
    return {"retry": DEFAULT_RETRY.with_deadline(seconds), "timeout": seconds}


def one_attempt(seconds: float) -> dict[str, Any]:
    """One call, not retried, timing out after ``seconds``: for a look-up that a refusal
    waits on (a BigQuery that is down must not hold the refusal up)."""
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    return {"retry": DEFAULT_RETRY.with_predicate(lambda _exc: False), "timeout": seconds}
