"""The jira connector's source options, declared once (validation, docs, admin forms)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from agnes_sync.env_names import EnvName
from agnes_sync.url_host import plain_host_url

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]{0,31}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
TABLE_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class JiraOptions(BaseModel):
    """``sources.<name>.options`` of a ``connector: jira`` source."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="The Jira site, e.g. https://jira.example.com.")

    _url_host = field_validator("url", mode="before")(plain_host_url)
    email: str = Field(min_length=3, description="The account the API token belongs to.")
    token_env: EnvName = Field(
        description="Name of the environment variable holding that account's API token "
        "(never stored, logged or echoed)."
    )
    webhook_secret_env: EnvName | None = Field(
        default=None,
        description="Name of the environment variable holding the webhook's secret; without "
        "it, deliveries are refused with 503.",
    )
    projects: list[str] = Field(
        default_factory=list,
        description="Project keys to keep (issues of other projects are ignored); empty: all.",
    )
    table_prefix: str = Field(
        default="jira_",
        description="Tables are <prefix>issues, <prefix>comments, <prefix>changelog and "
        "<prefix>issuelinks (change it when two Jira sites feed one server).",
    )
    census_hours: float = Field(
        default=24,
        ge=0,
        description="Hours between key censuses (a sync that lists every issue key and "
        "tombstones the ones deleted while no webhook arrived); 0: at every sync.",
    )
    overlap_minutes: int = Field(
        default=10,
        ge=0,
        description="A sync re-reads issues updated this long before the last sync started "
        "(clock skew, search index lag).",
    )
    restricted_comments: Literal["skip", "keep"] = Field(
        default="skip",
        description="Comments Jira restricts to a role or group (visibility), and a service "
        "desk's internal notes (jsdPublic false): 'skip' leaves them out of the comments "
        "table (Agnes does not apply Jira's permissions: every analyst granted the table "
        "would read them); 'keep' keeps them, marked in the visibility and jsd_public columns.",
    )
    fetch_concurrency: int = Field(
        default=8, ge=1, le=32, description="Issues fetched at once during a sync."
    )
    timeout_seconds: float = Field(default=30, gt=0, description="Per HTTP request.")

    @field_validator("token_env", "webhook_secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError("must be the name of an environment variable, e.g. JIRA_TOKEN")
        return value

    @field_validator("projects")
    @classmethod
    def _project_keys(cls, value: list[str]) -> list[str]:
        bad = [key for key in value if not PROJECT_KEY.match(key)]
        if bad:
            raise ValueError(f"not Jira project keys (A-Z, 0-9, starting with a letter): {bad}")
        return sorted(set(value))

    @field_validator("table_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not TABLE_PREFIX.match(value):
            raise ValueError("must be lowercase letters, digits and '_', starting with a letter")
        return value

    @property
    def base_url(self) -> str:
        return str(self.url).rstrip("/")
