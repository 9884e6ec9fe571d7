"""Changing run-time settings (scan caps, budgets, concurrency, result limits, the agent
rails): validated together, written together, audited with the acting admin.

One implementation for ``/api/admin/server-config`` and the admin app's settings page.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ByteSize, Field, ValidationError

from agnes_mcp.api.schemas import RequestBody
from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import Conflict, InvalidRequest
from agnes_mcp.query.budget import CAP_KEYS
from agnes_mcp.query.concurrency import MAX_CONCURRENT_QUERIES
from agnes_mcp.services import INSTRUCTIONS_KEY
from agnes_mcp.settings import CapBytes, CapRows, ScanCaps
from agnes_mcp.store.ids import utcnow

if TYPE_CHECKING:
    from agnes_mcp.services import Services

INSTRUCTIONS_MAX_CHARS = 100_000


class CapsUpdate(RequestBody):
    """Caps to change; ``null`` returns a cap to its configured default. The bounds are
    the settings' own (a cap in instance.yaml or the environment is bounded alike)."""

    per_query_bytes: CapBytes | None = Field(default=None, description="e.g. '5GiB'")
    per_user_daily_bytes: CapBytes | None = None
    concurrent_remote_queries_per_user: int | None = Field(default=None, ge=1, le=100)
    concurrent_queries_per_user: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CONCURRENT_QUERIES,
        description="Queries one user may run at once.",
    )
    concurrent_queries: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CONCURRENT_QUERIES,
        description="Queries the server may run at once.",
    )
    max_result_rows: CapRows | None = None
    max_result_bytes: CapBytes | None = None
    max_snapshot_rows: CapRows | None = None
    max_snapshot_bytes: CapBytes | None = None


class ConfigUpdate(RequestBody):
    scan_caps: CapsUpdate | None = None
    agent_instructions: str | None = Field(
        default=None,
        max_length=INSTRUCTIONS_MAX_CHARS,
        description="The agent rails (Markdown) for MCP instructions and workspaces' "
        "CLAUDE.md; an empty string returns to the built-in text.",
    )


class ServerConfig(BaseModel):
    scan_caps: dict[str, int]
    overrides: dict[str, int]
    agent_instructions: str
    agent_instructions_custom: bool = Field(description="False: the built-in text.")


class CapSetting(BaseModel):
    """One cap as the settings page shows it."""

    key: str
    description: str
    kind: Literal["bytes", "count"]
    default: int = Field(description="From the settings file (or the built-in default).")
    current: int = Field(description="In force now: the override, else the default.")
    overridden: bool


class ServerConfigInvalid(InvalidRequest):
    code = "server_config_invalid"
    default_hint = "Fix the fields named; nothing was changed."

    def __init__(self, fields: dict[str, str]) -> None:
        shown = "; ".join(f"{key}: {message}" for key, message in fields.items())
        super().__init__(f"Invalid settings: {shown}", details={"fields": fields})
        self.fields = fields


class ServerConfigChanged(Conflict):
    """A setting changed elsewhere since the caller read it: nothing is written, so one
    admin's save never silently undoes another's."""

    code = "server_config_changed"
    default_hint = "Read the settings again to see what is stored now, then make your change."

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(
            f"Changed elsewhere since you read them: {', '.join(fields)}. Nothing was saved.",
            details={"fields": fields},
        )
        self.fields = fields


def current_config(services: Services) -> ServerConfig:
    caps = services.query.budget.caps()
    stored = services.server_config.all()
    return ServerConfig(
        scan_caps={key: getattr(caps, key) for key in CAP_KEYS},
        overrides={
            k.split(".", 1)[1]: int(v) for k, v in stored.items() if k.startswith("scan_caps.")
        },
        agent_instructions=services.agent_instructions(),
        agent_instructions_custom=bool(str(stored.get(INSTRUCTIONS_KEY) or "").strip()),
    )


def cap_settings(services: Services) -> list[CapSetting]:
    """Every cap with its description, default and the value in force."""
    defaults = services.settings.scan_caps
    config = current_config(services)
    fields = ScanCaps.model_fields
    return [
        CapSetting(
            key=key,
            description=fields[key].description or "",
            kind="bytes" if fields[key].annotation is ByteSize else "count",
            default=int(getattr(defaults, key)),
            current=config.scan_caps[key],
            overridden=key in config.overrides,
        )
        for key in CAP_KEYS
    ]


def parse_caps(values: dict[str, Any]) -> CapsUpdate:
    """Validate cap values as the API does (``'5GiB'``, ``'1000'``; ``None``: back to the
    default), or raise :class:`ServerConfigInvalid` naming every bad field."""
    try:
        return CapsUpdate.model_validate(values)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else "scan_caps"
            message = str(error["msg"])
            if error["type"] == "extra_forbidden":
                message = f"is not a setting (settings: {', '.join(CAP_KEYS)})"
            fields.setdefault(key, message)
        raise ServerConfigInvalid(fields) from exc


def update_config(
    services: Services,
    admin: Principal,
    update: ConfigUpdate,
    *,
    seen: ServerConfig | None = None,
) -> ServerConfig:
    """Apply ``update`` at once (all caps in one transaction), audited with ``admin``.
    With ``seen`` (the config the change was made from), a setting it changes that was
    changed elsewhere since is not overwritten: :class:`ServerConfigChanged`, nothing
    written."""
    services.access.require_admin(admin)
    changes = update.scan_caps.model_dump(exclude_unset=True) if update.scan_caps else {}
    with services.store.writing():  # the check against what was read, then the write
        if seen is not None:
            _refuse_changed_since(current_config(services), seen, update, changes)
        if changes:
            _write_caps(services, changes, admin.user_id)
        params: dict[str, object] = {"scan_caps": changes}
        if update.agent_instructions is not None:
            services.set_agent_instructions(update.agent_instructions, admin.user_id)
            params["agent_instructions_chars"] = len(update.agent_instructions)
    services.audit.record(admin, "server_config.update", params=params)
    return current_config(services)


def _refuse_changed_since(
    now: ServerConfig, seen: ServerConfig, update: ConfigUpdate, changes: dict[str, Any]
) -> None:
    changed: dict[str, str] = {}
    for key in changes:
        if now.overrides.get(key) != seen.overrides.get(key):
            shown = now.overrides.get(key)
            changed[key] = f"now {shown}" if shown is not None else "now back to its default"
    if update.agent_instructions is not None and _custom_text(now) != _custom_text(seen):
        changed["agent_instructions"] = "the agent rails were edited"
    if changed:
        raise ServerConfigChanged(changed)


def _custom_text(config: ServerConfig) -> str:
    return config.agent_instructions if config.agent_instructions_custom else ""


def _write_caps(services: Services, changes: dict[str, Any], updated_by: str) -> None:
    """Every change or none (one transaction)."""
    now = utcnow()
    with services.store.transaction() as cur:
        for key, value in changes.items():
            if value is None:
                cur.execute("DELETE FROM server_config WHERE key = ?", [f"scan_caps.{key}"])
            else:
                cur.execute(
                    "INSERT OR REPLACE INTO server_config (key, value, updated_by, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    [f"scan_caps.{key}", json.dumps(int(value)), updated_by, now],
                )
