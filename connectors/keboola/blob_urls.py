"""Where a slice of a sliced export is fetched from, and with which credentials.

A sliced file's manifest (``{"entries": [{"url": ...}]}``) names its slices in the stack's
object store: ``s3://bucket/key`` (AWS stacks), ``gs://bucket/key`` (GCP) or
``azure://account.blob.core.windows.net/container/name`` (Azure); an ``http(s)`` URL is
fetched as it is. The file detail asked with ``federationToken=1`` carries short-lived
credentials for the store: ``credentials`` + ``region`` (S3, signed here with AWS
Signature V4), ``gcsCredentials.access_token`` (a bearer token) or
``absCredentials.SASConnectionString`` (a SAS query string). Those stay in memory.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from agnes_sync.errors import TerminalSyncError

UNSIGNED = "UNSIGNED-PAYLOAD"


def resolve(entry_url: str, file_info: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The HTTPS URL and headers that fetch one manifest entry."""
    parts = urlsplit(entry_url)
    scheme = parts.scheme.lower()
    signed = bool(parts.query) or not parts.netloc.endswith(".blob.core.windows.net")
    if scheme in ("http", "https") and signed:
        return entry_url, {}
    try:
        if scheme == "s3":
            return _s3(parts.netloc, parts.path.lstrip("/"), file_info)
        if scheme == "gs":
            token = file_info["gcsCredentials"]["access_token"]
            url = f"https://storage.googleapis.com/{parts.netloc}/{quote(parts.path.lstrip('/'))}"
            return url, {"Authorization": f"Bearer {token}"}
        if scheme in ("azure", "https"):
            return f"https://{parts.netloc}{quote(parts.path)}?{_sas(file_info)}", {}
    except (KeyError, TypeError):
        raise TerminalSyncError(
            f"Keboola's file detail lacks the {scheme}:// credentials needed to fetch the slices."
        ) from None
    raise TerminalSyncError(f"A slice is stored at a {scheme}:// URL, which is not supported.")


def _sas(file_info: Mapping[str, Any]) -> str:
    connection = file_info["absCredentials"]["SASConnectionString"]
    for part in str(connection).split(";"):
        key, _, value = part.partition("=")
        if key.strip() == "SharedAccessSignature":
            return value.strip().lstrip("?")
    raise KeyError("SharedAccessSignature")


def _s3(bucket: str, key: str, file_info: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    credentials = file_info["credentials"]
    region = file_info.get("region") or "us-east-1"
    host = f"{bucket}.s3.{region}.amazonaws.com"
    path = "/" + quote(key, safe="/-_.~")
    headers = {
        "host": host,
        "x-amz-content-sha256": UNSIGNED,
        "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
    }
    if credentials.get("SessionToken"):
        headers["x-amz-security-token"] = credentials["SessionToken"]
    headers["authorization"] = sign_v4(
        "GET",
        path,
        "",
        headers,
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        region=region,
        payload_hash=UNSIGNED,
    )
    del headers["host"]  # httpx sends it from the URL
    return f"https://{host}{path}", headers


def sign_v4(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    *,
    access_key: str,
    secret_key: str,
    region: str,
    payload_hash: str,
    service: str = "s3",
) -> str:
    """The ``Authorization`` header of AWS Signature Version 4 over ``headers`` (all of them
    are signed; ``x-amz-date`` must be among them). ``path`` is already URI-encoded."""
    lowered = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed = ";".join(sorted(lowered))
    canonical = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{k}:{lowered[k]}\n" for k in sorted(lowered)),
            signed,
            payload_hash,
        ]
    )
    stamp = lowered["x-amz-date"]
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
