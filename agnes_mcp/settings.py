"""One typed settings object for the server.

Values come from, highest precedence first: constructor arguments (command-line
flags), ``AGNES_*`` environment variables (nested keys with ``__``, e.g.
``AGNES_SCAN_CAPS__PER_QUERY_BYTES``), an optional ``instance.yaml``, then the
defaults below. Bad values and unknown keys fail at start with a message that
names where the value came from (file and line, or env var), the key, and a fix.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from agnes_mcp.config_file import ConfigFile, describe_validation_errors, warn_unknown_env
from agnes_mcp.errors import ConfigError
from agnes_sync.env_names import EnvName
from agnes_sync.url_host import plain_host_url

ENV_PREFIX = "AGNES_"
CONFIG_FILE_ENV = "AGNES_CONFIG"
CONFIG_FILE_NAME = "instance.yaml"
# Variables with the AGNES_ prefix that belong to the client side, not these settings.
CLIENT_ENV_VARS = frozenset(
    {
        "AGNES_CONFIG",
        "AGNES_SERVER_URL",
        "AGNES_TOKEN",
        "AGNES_WORKSPACE",
        "AGNES_CONFIG_HOME",
        "AGNES_WARM_QUERY",
        "AGNES_WARM_IDLE_SECONDS",
    }
)


# The shortest key auth.session_secret_env may name (it signs session cookies).
SESSION_SECRET_MIN_CHARS = 32


def _split_csv(value: Any) -> Any:
    """A list setting given as text (an environment variable): comma-separated, or a JSON
    list. A JSON list was split at its commas into entries such as '["a.example.com"',
    which match nothing, silently."""
    if isinstance(value, str):
        if value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise PydanticCustomError(
                    "list_text",
                    "starts with '[' but is not a JSON list; write the entries comma-separated "
                    '(a.example.com,b.example.com) or as a JSON list (["a.example.com"])',
                ) from None
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A byte cap is at least 1 byte and at most 1 PiB: 0 made every remote query refused and
# 10^40 - 1 was accepted (and shown as "8673617379884035735552.0EiB"). The same bounds hold
# for the file, the environment and a change at run time (server_config_admin).
# A number as people write it: digits, or digit groups of three after commas or underscores
# ("5,000,000", "1_000_000").
_NUMBER = r"(\d{1,3}(?:[,_]\d{3})+|\d+)"
_SIZE = re.compile(_NUMBER + r"(\.\d+)?\s*([A-Za-z]*)")
_COUNT = re.compile(_NUMBER)


def _size_text(value: Any) -> Any:
    """A byte size written as text, read whole: pydantic's ``ByteSize`` reads only the start
    of a text, so "5,000,000" was a 5-byte cap (every remote query refused) and "5;3" was 5.
    Digit groups lose their separators; anything else past the number and its unit is
    refused."""
    if not isinstance(value, str):
        return value
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise PydanticCustomError(
            "size_text",
            "'{text}' is not a size: write a number of bytes, with a unit if you like "
            "(5GiB, 500MB, 1,000,000)",
            {"text": value},
        )
    number, fraction, unit = match.groups()
    return f"{re.sub('[,_]', '', number)}{fraction or ''}{unit}"


def _count_text(value: Any) -> Any:
    """A count written with digit groups ("100,000") as its digits."""
    if isinstance(value, str) and _COUNT.fullmatch(value.strip()):
        return re.sub("[,_]", "", value.strip())
    return value


CapBytes = Annotated[ByteSize, BeforeValidator(_size_text), Field(ge=1, le=1 << 50)]
# A row cap is at most 10^12: 10^23 was accepted, and then a query asking for more rows
# than DuckDB's LIMIT can hold (int64) failed with the engine's conversion error, not the cap.
CapRows = Annotated[int, BeforeValidator(_count_text), Field(ge=1, le=10**12)]


def _is_host_pattern(text: str) -> bool:
    """A host name, an IP address or a shell-style pattern of names, as a ``Host`` header
    names the server once its port is taken off."""
    name = text.strip()
    if not name or any(c in name for c in "/@\\?# "):
        return False
    if ":" in name:  # only an IPv6 address (a port is never part of the name compared)
        try:
            ipaddress.IPv6Address(name.strip("[]"))
        except ValueError:
            return False
    return True


def _refuse_entries(wrong: list[str], kind: str, problem: str) -> None:
    """A list setting's entries that cannot work, named in one error ("'x' is not ...")."""
    if wrong:
        raise PydanticCustomError(
            kind,
            "{wrong} {be} " + problem,
            {
                "wrong": ", ".join(repr(entry) for entry in wrong),
                "be": "is" if len(wrong) == 1 else "are",
            },
        )


def _is_origin(text: str) -> bool:
    """``scheme://host[:port]`` as a browser's ``Origin`` header names a page's origin."""
    parts = urlsplit(text.strip())
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number (or too large)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.path in ("", "/")
        and not (parts.query or parts.fragment or parts.username or parts.password)
    )


class ScanCaps(BaseModel):
    """Defaults for the rails on queries; admins can change them at run time."""

    model_config = ConfigDict(extra="forbid")

    per_query_bytes: CapBytes = Field(
        default=ByteSize(5 * 1024**3),
        description="Largest scan one remote query may make (estimated before it runs).",
    )
    per_user_daily_bytes: CapBytes = Field(
        default=ByteSize(50 * 1024**3),
        description="Bytes of remote scans one user may spend per UTC day.",
    )
    concurrent_remote_queries_per_user: int = Field(
        default=5, ge=1, le=100, description="Remote queries one user may run at the same time."
    )
    concurrent_queries_per_user: int = Field(
        default=5,
        ge=1,
        le=200,
        description="Queries (local, server and remote) one user may run at the same time; "
        "more are refused with too_many_queries (429), never queued.",
    )
    concurrent_queries: int = Field(
        default=20,
        ge=1,
        le=200,
        description="Queries the whole server may run at the same time; more are refused "
        "with too_many_queries (429), never queued.",
    )
    max_result_rows: CapRows = Field(
        default=100_000, description="Most rows a query result may return to a client."
    )
    max_result_bytes: CapBytes = Field(
        default=ByteSize(256 * 1024**2),
        description="Most bytes a query result may return to a client.",
    )
    max_snapshot_rows: CapRows = Field(
        default=10_000_000,
        description="Most rows one snapshot may hold; a larger one is refused, never cut.",
    )
    max_snapshot_bytes: CapBytes = Field(
        default=ByteSize(1024**3),
        description="Most bytes (in memory, as Arrow) one snapshot may hold; a larger one is "
        "refused, never cut.",
    )


# An e-mail domain as it follows the '@' (lower case, ASCII): company_domain, allowed_domains.
EMAIL_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")

GOOGLE_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"
GOOGLE_DIRECTORY_API = "https://admin.googleapis.com/admin/directory/v1"


def _without_credentials(value: AnyHttpUrl) -> AnyHttpUrl:
    """A URL the server fetches, refused when it carries a user name or password (never
    echoed): every message about a failed fetch names the URL."""
    if value.username or value.password:
        raise PydanticCustomError(
            "url_with_credentials",
            "holds a user name or password, which every message about a failed request "
            "(the server log, sign-in and sync errors) would repeat; give the URL without "
            "them",
        )
    return value


class OidcSettings(BaseModel):
    """The OpenID Connect provider people sign in with (Google unless changed)."""

    model_config = ConfigDict(extra="forbid")

    discovery_url: AnyHttpUrl = Field(
        default=AnyHttpUrl(GOOGLE_DISCOVERY_URL),
        description="The provider's OpenID discovery document (Okta, Keycloak, Entra work too).",
    )
    client_id: str | None = Field(
        default=None,
        description="OAuth client id; 'Sign in with Google' shows only when it is set.",
    )

    _discovery_url_plain = field_validator("discovery_url")(_without_credentials)
    _discovery_url_host = field_validator("discovery_url", mode="before")(plain_host_url)
    client_secret_env: EnvName = Field(
        default="AGNES_OIDC_CLIENT_SECRET",
        validate_default=True,  # the default name must hold the secret too
        description="Name of the environment variable holding the client secret "
        "(the secret itself is never stored or logged).",
    )
    button_label: str = Field(
        default="Sign in with Google", min_length=1, description="The sign-in button's text."
    )

    @field_validator("client_secret_env")
    @classmethod
    def _secret_is_set(cls, value: str, info: ValidationInfo) -> str:
        """With a client id, sign-in with the provider needs the secret: without it the
        button could never work, and the server would believe admins can sign in that way
        (revoking the last admin token is allowed then). Checked at start, before anything
        is written; the value itself is never shown."""
        if info.data.get("client_id") and not os.environ.get(value):
            raise PydanticCustomError(
                "secret_env_unset",
                "auth.oidc.client_id is set, but the environment variable this names, "
                "${name}, is unset or empty: sign-in with the provider could never work. "
                "Set ${name} to the client secret, or name the variable that holds it",
                {"name": value},
            )
        return value


class GoogleGroupsSettings(BaseModel):
    """Group memberships read from Google Workspace's Directory API."""

    model_config = ConfigDict(extra="forbid")

    api_url: AnyHttpUrl = Field(
        default=AnyHttpUrl(GOOGLE_DIRECTORY_API),
        description="Base URL of the Directory API (tests point it at a local server).",
    )

    _api_url_plain = field_validator("api_url")(_without_credentials)
    _api_url_host = field_validator("api_url", mode="before")(plain_host_url)
    credentials_env: EnvName | None = Field(
        default=None,
        description="Name of the environment variable holding the service account's JSON key "
        "(domain-wide delegation); group sync is off while it is unset.",
    )
    delegated_admin: str | None = Field(
        default=None,
        description="Workspace admin the service account acts as (domain-wide delegation).",
    )
    prefix: str = Field(
        default="",
        description="Only Google groups whose e-mail starts with this are synced ('' = all).",
    )
    admin_group: str | None = Field(
        default=None,
        description="E-mail of the Google group whose members join Agnes's Admin group.",
    )
    sync_interval_hours: float = Field(
        default=24.0, gt=0, le=24 * 31, description="How often every user's groups are re-read."
    )


class OAuthSettings(BaseModel):
    """Agnes as the OAuth 2.1 authorization server of its own ``/mcp`` endpoint."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True,
        description="MCP clients may sign in with OAuth (discovery, registration, consent); "
        "off, /mcp takes personal access tokens only.",
    )
    access_token_minutes: int = Field(
        default=60, ge=1, le=24 * 60, description="Lifetime of an OAuth access token."
    )
    refresh_token_days: int = Field(
        default=30, ge=1, le=365, description="Lifetime of a refresh token (each use rotates it)."
    )
    registrations_per_hour: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Client registrations allowed per client IP per hour (RFC 7591 endpoint).",
    )


class AuthSettings(BaseModel):
    """How people sign in to the web pages (/auth/login, /me, /admin) and MCP clients
    to /mcp (OAuth)."""

    model_config = ConfigDict(extra="forbid")

    oidc: OidcSettings = Field(default_factory=OidcSettings, description="OIDC sign-in.")
    allowed_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="E-mail domains allowed to sign in with OIDC (default: company_domain); "
        "comma-separated in env.",
    )
    google_groups: GoogleGroupsSettings = Field(
        default_factory=GoogleGroupsSettings, description="Group sync from Google Workspace."
    )
    session_idle_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="A web session unused this long ends."
    )
    session_secret_env: EnvName | None = Field(
        default=None,
        description="Name of an environment variable holding the key that signs session "
        "cookies; unset, a random key is kept in DATA_DIR/state/session.key (mode 0600).",
    )
    oauth: OAuthSettings = Field(
        default_factory=OAuthSettings, description="OAuth sign-in for MCP clients."
    )

    @field_validator("session_secret_env")
    @classmethod
    def _session_secret_is_set(cls, value: str | None) -> str | None:
        """Checked at start, before anything is written: the key was first read when the
        admin app mounted, after the server had said it was serving (a traceback, and no
        sign-in). The value itself is never shown."""
        if value is not None and len(os.environ.get(value, "")) < SESSION_SECRET_MIN_CHARS:
            raise PydanticCustomError(
                "secret_env_unset",
                "the environment variable this names, ${name}, is unset or shorter than "
                "{least} characters. Set it to a long random value (e.g. the output of "
                "'openssl rand -base64 48'), or unset this setting to keep a random key in "
                "DATA_DIR/state/session.key",
                {"name": value, "least": SESSION_SECRET_MIN_CHARS},
            )
        return value

    _split_domains = field_validator("allowed_domains", mode="before")(_split_csv)

    @field_validator("allowed_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        """An entry that is no e-mail domain ('@example.com', '*', '*.example.com') matched
        no one's e-mail: OIDC sign-in was refused to everyone, and the start said nothing."""
        domains = [d.strip().lower() for d in value if d.strip()]
        _refuse_entries(
            [d for d in domains if not EMAIL_DOMAIN.match(d)],
            "not_domains",
            "not an e-mail domain: write each as it follows the '@' (example.com); every "
            "domain, subdomains too, is listed by name (no '*'), in ASCII (xn--... for an "
            "international one)",
        )
        return domains


class MarketplaceSettings(BaseModel):
    """Claude Code plugin marketplaces: git repositories synced by the server and served to
    each analyst filtered by their groups' grants (``/marketplace.git``, ``/marketplace.zip``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default="agnes",
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        max_length=64,
        description="Name of the one marketplace every analyst's Claude Code sees (kebab-case).",
    )
    description: str = Field(
        default="Plugins your company grants you, served by Agnes.",
        description="Description written into the served marketplace.json.",
    )
    allow_local: bool = Field(
        default=False,
        description="Allow file:// URLs, local paths and loopback or private hosts as "
        "marketplace sources (one box running everything; the demo and tests). Off, only "
        "https:// to public hosts.",
    )
    sync_interval_hours: float = Field(
        default=24.0,
        ge=0,
        le=24 * 31,
        description="How often every marketplace is fetched again (0: only on demand).",
    )
    max_file_bytes: ByteSize = Field(
        default=ByteSize(10 * 1024**2),
        description="Largest file a served plugin may hold; a larger one refuses the sync.",
    )
    max_plugin_bytes: ByteSize = Field(
        default=ByteSize(100 * 1024**2),
        description="Most bytes one plugin may hold; a larger one refuses the sync.",
    )
    max_plugins: int = Field(
        default=500, ge=1, le=10_000, description="Most plugins one marketplace may list."
    )
    max_fetch_bytes: ByteSize = Field(
        default=ByteSize(1024**3),
        description="Largest pack one fetch of a marketplace repository may bring (git "
        "writes it as one file); a larger fetch is stopped and refuses the sync.",
    )
    max_repo_files: int = Field(
        default=200_000,
        ge=1,
        le=10_000_000,
        description="Most files (tree entries) a marketplace repository's commit may hold; "
        "a larger one refuses the sync before it is read.",
    )
    token_envs: Annotated[list[EnvName], NoDecode] = Field(
        default_factory=list,
        description="The server environment variables a marketplace may name as its read "
        "token (--token-env); no other is ever sent to a repository host.",
    )
    git_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="A git fetch of a marketplace taking longer "
        "is stopped (the last good sync stays served).",
    )
    feed_cache_entries: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="Built feeds (one per distinct set of granted plugins) kept on disk; the "
        "least recently used beyond this are removed.",
    )
    feed_cache_bytes: ByteSize = Field(
        default=ByteSize(10 * 1024**3),
        description="Most bytes the built feeds may take on disk (each distinct set of "
        "granted plugins is a full copy, as a ZIP and a git repository); the least "
        "recently used beyond this are removed.",
    )
    git_requests_per_user: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="git requests (clone, fetch) to /marketplace.git one user may have "
        "running at once; more are answered 429 with Retry-After.",
    )
    git_requests: int = Field(
        default=16,
        ge=1,
        le=10_000,
        description="git requests to /marketplace.git running at once on the server; more "
        "are answered 429 with Retry-After.",
    )
    git_request_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="A git request to /marketplace.git running longer is stopped (its "
        "git http-backend killed).",
    )

    _split_token_envs = field_validator("token_envs", mode="before")(_split_csv)


def _options_with_url_credentials(value: object, name: str = "") -> Iterator[str]:
    """The names (dotted) of the options whose text is a URL carrying credentials:
    ``scheme://user:password@host`` (or a user name alone, often a token)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _options_with_url_credentials(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _options_with_url_credentials(item, f"{name}[{index}]")
    elif isinstance(value, str) and "://" in value:
        try:
            netloc = urlsplit(value.strip()).netloc
        except ValueError:  # not a URL this could judge: the connector's own check says
            return
        if "@" in netloc:
            yield name or "options"


class SourceSettings(BaseModel):
    """One data source: which connector reads it and that connector's options."""

    model_config = ConfigDict(extra="forbid")

    connector: str = Field(description="Connector name, e.g. 'files' or 'duckdb_warehouse'.")
    description: str = Field(default="", description="What this source holds, for admins.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,
        description="Connector options (checked against the connector's own at start).",
    )

    @field_validator("connector")
    @classmethod
    def _installed(cls, value: str) -> str:
        from agnes_sync.connector_registry import available
        from agnes_sync.suggest import did_you_mean

        installed = available()
        if value not in installed:
            raise PydanticCustomError(
                "connector_not_installed",
                "no connector named '{name}' is installed. {close}Installed: {installed}.",
                {
                    "name": value,
                    "close": did_you_mean(value, installed),
                    "installed": ", ".join(installed),
                },
            )
        return value

    @field_validator("options")
    @classmethod
    def _fit_the_connector(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The options the connector declares (no I/O: a folder or a warehouse is only
        reached when the source is used). Problems name the option, never its value: an
        option is no place for a secret, but one may have been put there by mistake."""
        from agnes_sync.connector_registry import available
        from agnes_sync.suggest import did_you_mean

        connector = available().get(str(info.data.get("connector")))
        if connector is None:  # reported on 'connector'
            return value
        carrying = sorted(_options_with_url_credentials(value))
        if carrying:
            raise PydanticCustomError(
                "connector_options",
                "the {connector} connector's options: {names}: a URL with a user name or "
                "password in it, which every message naming the URL (sync errors, the "
                "server log, the sync history) would repeat; take it out and put the secret "
                "in the environment variable the connector's *_env option names",
                {"connector": connector.name, "names": ", ".join(map(repr, carrying))},
            )
        try:
            connector.Options.model_validate(value)
        except ValidationError as exc:
            known = connector.Options.model_fields
            problems = []
            for error in exc.errors(include_url=False):
                name = ".".join(str(part) for part in error["loc"]) or "options"
                if error["type"] == "extra_forbidden":
                    close = did_you_mean(name, known)
                    problems.append(
                        f"unknown option {name!r} ({close or ''}options: "
                        f"{', '.join(known) or 'none'})"
                    )
                elif error["type"] == "missing":
                    problems.append(f"option {name!r} is required")
                else:
                    problems.append(f"option {name!r}: {error['msg']}")
            raise PydanticCustomError(
                "connector_options",
                "the {connector} connector's options: {problems}",
                {"connector": connector.name, "problems": "; ".join(problems)},
            ) from None
        return value


class AgnesSettings(BaseSettings):
    """Settings of one Agnes server instance."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    instance_name: str = Field(
        default="Agnes", min_length=1, description="Name shown to users and agents."
    )
    company_domain: str = Field(
        default="example.com",
        pattern=EMAIL_DOMAIN.pattern,
        description="E-mail domain of the company's users, e.g. 'example.com'.",
    )
    data_dir: Path = Field(
        default=Path("agnes-data"),
        description=(
            "Folder holding state/, extracts/, analytics/, snapshots/ and marketplaces/ "
            "(a relative path is taken from the working directory at start)."
        ),
    )
    host: str = Field(
        default="127.0.0.1",
        description="Interface to bind. Only loopback unless you put Agnes behind a proxy.",
    )
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port to bind (0: any free).")
    public_url: AnyHttpUrl | None = Field(
        default=None,
        description="URL clients use to reach the server, if not http://HOST:PORT.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Extra Host header values accepted (DNS-rebinding protection); comma-separated in env."
        ),
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra browser Origins accepted, e.g. 'https://agnes.example.com'.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Addresses of reverse proxies whose X-Forwarded-For/-Proto headers are believed; "
            "none by default, so a client cannot fake its IP."
        ),
    )
    max_request_bytes: ByteSize = Field(
        default=ByteSize(10 * 1024**2),
        description="Largest request body the API accepts; larger ones get 413.",
    )
    max_upload_bytes: ByteSize = Field(
        default=ByteSize(256 * 1024**2),
        description="Largest file 'agnes push' may upload (session transcripts, "
        "CLAUDE.local.md); streamed to disk, never held in memory.",
    )
    max_connections_per_client: int = Field(
        default=256,
        ge=16,
        le=65536,
        description="Open connections one client address may hold (a request head must also "
        "arrive within 10 s). Raise it when many people reach the server from one address "
        "without a proxy (an office behind NAT, each MCP session holding a stream); a "
        "trusted proxy's connections are not counted.",
    )
    mcp_sessions_per_user: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="MCP sessions (streamable HTTP) one user may hold at once; opening one "
        "more ends that user's oldest (its client opens a new one when it comes back).",
    )
    max_snapshot_bytes_per_user: ByteSize = Field(
        default=ByteSize(10 * 1024**3),
        description="What one user's snapshots kept on the server may hold in all; once "
        "they hold it, a new snapshot is refused (snapshot_quota_exceeded) until some are "
        "dropped or expire.",
    )
    max_upload_bytes_per_user: ByteSize = Field(
        default=ByteSize(2 * 1024**3),
        description="What one user's uploads ('agnes push': transcripts, CLAUDE.local.md) "
        "may hold on the server in all, uploads in progress counted; past it an upload "
        "gets 413 and nothing is kept.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Server log level."
    )
    write_behind_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often token last-used times and audit rows are flushed to the system DB.",
    )
    scheduler_enabled: bool = Field(
        default=True, description="Run scheduled syncs in the server process."
    )
    sync_workers: int = Field(
        default=2, ge=1, le=64, description="Tables synced at the same time (worker pool size)."
    )
    sync_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts per sync when failures are transient."
    )
    sync_backoff_seconds: float = Field(
        default=2.0, ge=0, le=600, description="First retry delay; doubles on each further retry."
    )
    query_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="A query running longer is interrupted."
    )
    query_default_rows: int = Field(
        default=1000, ge=1, description="Rows a query returns when the caller gives no limit."
    )
    query_memory_limit: str = Field(
        default="2GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory one query sandbox (a DuckDB instance) may use, e.g. '2GB'.",
    )
    query_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threads per query sandbox (a query that reads only tables of at most "
        "one row group, 122,880 rows, runs on one: DuckDB would not split its scans).",
    )
    query_spill_bytes: ByteSize = Field(
        default=ByteSize(1024**3),
        description="Disk one query sandbox may spill to past query_memory_limit (a large "
        "sort or join), in a private folder of the system's temporary folder; past it the "
        "query is refused (memory_limit_exceeded). The server's total is at most this times "
        "the queries running at once (scan_caps.concurrent_queries). 0: never spill.",
    )
    query_file_copy_bytes: ByteSize = Field(
        default=ByteSize(2 * 1024**3),
        description="Memory for the sealed in-memory copies of table files that query "
        "sandboxes read with DuckDB's own parquet reader (no server path visible); tables "
        "past it are read through Arrow datasets, slower. 0: always Arrow datasets.",
    )
    query_native_table_bytes: ByteSize = Field(
        default=ByteSize(2 * 1024**3),
        description="Disk, in a private folder of the system's temporary folder, for tables "
        "converted in the background to DuckDB's own storage, which query sandboxes attach "
        "read-only (a GROUP BY reads them ~2x faster than parquet). Until a table is "
        "converted, or past the budget, it is read from its parquet files. 0: never.",
    )
    query_native_table_min_bytes: ByteSize = Field(
        default=ByteSize(0),
        description="Tables whose parquet files hold less than this are not converted "
        "(query_native_table_bytes) and are read from parquet. By default every table is: "
        "a small one (under 1 MiB of parquet) is written with 16 KiB blocks (~45 KB and "
        "~4 ms for a few rows), and a query on it spends ~0.1 ms less than on its parquet. "
        "Each converted table costs a sandbox that reads it ~70 KB of memory and ~0.5 ms "
        "to set up: with thousands of small tables, 1MiB keeps those on parquet.",
    )
    scan_caps: ScanCaps = Field(
        default_factory=ScanCaps, description="Default caps for remote scans and results."
    )
    sources: dict[str, SourceSettings] = Field(
        default_factory=dict, description="Data sources by name."
    )
    auth: AuthSettings = Field(
        default_factory=AuthSettings, description="Sign-in for people: OIDC, sessions, groups."
    )
    marketplace: MarketplaceSettings = Field(
        default_factory=MarketplaceSettings,
        description="Claude Code plugin marketplaces served per group.",
    )

    _split_hosts = field_validator(
        "allowed_hosts", "allowed_origins", "trusted_proxies", mode="before"
    )(_split_csv)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        """A Host header's name is compared without its port: an entry written as a URL
        (https://agnes.example.com) or with a port or path matched no request, silently."""
        _refuse_entries(
            [entry for entry in value if not _is_host_pattern(entry)],
            "not_host_names",
            "not a host name: write the name alone, without a scheme, port or path "
            "(agnes.example.com, *.example.com, 10.0.0.5)",
        )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        """An entry that is not an address (a host name, a typo) passed the start and then
        failed every connection's admission with a traceback (ipaddress' ValueError)."""
        wrong = []
        for entry in value:
            try:
                if entry.strip() != "*":
                    ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                wrong.append(entry)
        _refuse_entries(
            wrong,
            "not_addresses",
            "not an IP address or network: name each proxy by the address it connects "
            "from (127.0.0.1, 10.0.0.0/8, ::1), not by host name",
        )
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """A browser's Origin is always ``scheme://host[:port]``: an entry written without
        its scheme (``agnes.example.com``) or with a path matched no request, silently."""
        _refuse_entries(
            [entry for entry in value if not _is_origin(entry)],
            "not_origins",
            "not an origin: write each as a browser sends it, a scheme and a host with an "
            "optional port and nothing after (https://agnes.example.com, "
            "http://localhost:3000)",
        )
        return value

    _public_url_host = field_validator("public_url", mode="before")(plain_host_url)

    @field_validator("public_url")
    @classmethod
    def _origin_only(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        """Agnes serves its routes at the root of its URL (OAuth discovery and the MCP
        endpoint are found there): a path, a query or a fragment would name URLs no route
        answers."""
        if value is None:
            return None
        if value.username or value.password:  # never echoed: it may hold a password
            raise PydanticCustomError(
                "url_with_credentials",
                "holds a user name or password: it is shown to every client (the banner, "
                "OAuth discovery, the lines /me offers to paste); give the origin only "
                "(https://agnes.example.com)",
            )
        if (value.path or "/") != "/" or value.query or value.fragment:
            raise ValueError(
                "must be the server's origin only (https://agnes.example.com), without a path, "
                "query or fragment: Agnes serves its routes at the root (a proxy must forward "
                "a host, or the root of one, to it, not a sub-path)"
            )
        return value

    @field_validator("host")
    @classmethod
    def _named_host(cls, value: str) -> str:
        """An empty host (AGNES_HOST="$HOST", unset) bound every interface, while the
        banner named 127.0.0.1: the server was open to the network without a word."""
        if not value.strip():
            raise PydanticCustomError(
                "empty_host",
                "is empty, which would listen on every interface; name one: 127.0.0.1 "
                "(this machine only), or 0.0.0.0 (every interface, behind a proxy)",
            )
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _named_data_dir(cls, value: Any) -> Any:
        """An empty value (a script's unset variable: AGNES_DATA_DIR="$DIR") was the
        working directory, which the server then made 0700 and filled with state/,
        extracts/ and the rest."""
        if isinstance(value, (str, Path)) and not str(value).strip():
            raise PydanticCustomError(
                "empty_data_dir",
                "is empty; name the folder (a missing one is made), or leave the setting "
                "out for ./agnes-data",
            )
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        """Resolved once at start: views and file lists record absolute paths, which must not
        depend on the working directory of whoever reads them later."""
        return value.expanduser().resolve()

    @field_validator("company_domain", mode="before")
    @classmethod
    def _lower_domain(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    # Resolved locations ---------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"

    @property
    def system_db_path(self) -> Path:
        return self.state_dir / "system.duckdb"

    @property
    def extracts_dir(self) -> Path:
        return self.data_dir / "extracts"

    @property
    def marketplaces_dir(self) -> Path:
        return self.data_dir / "marketplaces"

    @property
    def sign_in_domains(self) -> list[str]:
        """E-mail domains OIDC sign-in accepts."""
        return self.auth.allowed_domains or [self.company_domain]

    @property
    def base_url(self) -> str:
        """The URL clients should use to reach this server."""
        if self.public_url is not None:
            return str(self.public_url).rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_source = _FileSource(settings_cls, _ACTIVE_FILE.get())
        return (init_settings, env_settings, file_source)


class _FileSource(PydanticBaseSettingsSource):
    """Feeds the parsed ``instance.yaml`` (if any) into pydantic-settings."""

    def __init__(self, settings_cls: type[BaseSettings], config: ConfigFile | None) -> None:
        super().__init__(settings_cls)
        self._data = config.data if config else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


# pydantic-settings builds its sources inside the constructor, so the parsed file is
# handed over through a context variable that only load_settings() sets.
_ACTIVE_FILE: ContextVar[ConfigFile | None] = ContextVar("agnes_config_file", default=None)


def find_config_file(explicit: Path | None, data_dir: Path | None) -> Path | None:
    """The instance.yaml to read: the explicit path, $AGNES_CONFIG, or DATA_DIR/instance.yaml."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_FILE_ENV)
    if from_env:
        return Path(from_env)
    base = data_dir or Path(os.environ.get("AGNES_DATA_DIR", "agnes-data"))
    candidate = base / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> AgnesSettings:
    """Load settings; ``overrides`` are command-line values (``None`` means not given).

    Raises :class:`agnes_mcp.errors.ConfigError` naming the file/env var and key.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    data_dir = given.get("data_dir")
    path = find_config_file(config_file, Path(data_dir) if data_dir else None)
    config = ConfigFile.read(path, AgnesSettings) if path is not None else None
    # Variables the settings name as holding secrets (auth.oidc.client_secret_env's default
    # AGNES_OIDC_CLIENT_SECRET, a source's credentials_env) are used, not misspelt settings:
    # they were warned about as "matches no setting; it is ignored" at every start.
    named = set(named_variables(AgnesSettings.model_construct().model_dump()))
    named.update(named_variables(config.data if config else {}))
    named.update(named_variables({k.lower(): v for k, v in os.environ.items()}))
    token = _ACTIVE_FILE.set(config)
    try:
        settings = AgnesSettings(**given)
        named.update(named_variables(settings.model_dump()))
        return settings
    except ValidationError as exc:
        raise describe_validation_errors(exc, AgnesSettings, config, given, ENV_PREFIX) from None
    except SettingsError as exc:  # an env var holding malformed JSON for a structured setting
        field = str(exc).split('field "', 1)[-1].split('"', 1)[0]
        raise ConfigError(
            f"Invalid configuration: environment variable {ENV_PREFIX}{field.upper()} "
            "is not valid JSON.",
            hint=f"Set it to a JSON object, or set single keys "
            f"({ENV_PREFIX}{field.upper()}__<KEY>).",
        ) from None
    finally:
        _ACTIVE_FILE.reset(token)
        warn_unknown_env(AgnesSettings, ENV_PREFIX, CLIENT_ENV_VARS | named)


def named_variables(data: Any) -> Iterator[str]:
    """The environment variables ``data`` (settings, or a part of them) names as holding a
    value: the text of every key ending in ``_env`` (``credentials_env``,
    ``client_secret_env``), or each item of one ending in ``_envs`` (``token_envs``)."""
    if isinstance(data, dict):
        for key, value in data.items():
            name = str(key).lower()
            if name.endswith("_env") and isinstance(value, str):
                yield value
            elif name.endswith("_envs") and isinstance(value, list):
                yield from (item for item in value if isinstance(item, str))
            else:
                yield from named_variables(value)
    elif isinstance(data, list):
        for item in data:
            yield from named_variables(item)
