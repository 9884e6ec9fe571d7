"""Admin: settings that change while the server runs (scan caps, agent instructions)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ByteSize, Field

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import RequestBody
from agnes_mcp.query.budget import CAP_KEYS
from agnes_mcp.query.concurrency import MAX_CONCURRENT_QUERIES
from agnes_mcp.services import INSTRUCTIONS_KEY

router = APIRouter(prefix="/api/admin/server-config", tags=["admin: server config"])


class CapsUpdate(RequestBody):
    """Caps to change; ``null`` returns a cap to its configured default."""

    per_query_bytes: ByteSize | None = Field(default=None, description="e.g. '5GiB'")
    per_user_daily_bytes: ByteSize | None = None
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
    max_result_rows: int | None = Field(default=None, ge=1)
    max_result_bytes: ByteSize | None = None
    max_snapshot_rows: int | None = Field(default=None, ge=1)
    max_snapshot_bytes: ByteSize | None = None


class ConfigUpdate(RequestBody):
    scan_caps: CapsUpdate | None = None
    agent_instructions: str | None = Field(
        default=None,
        max_length=100_000,
        description="The agent rails (Markdown) for MCP instructions and workspaces' "
        "CLAUDE.md; an empty string returns to the built-in text.",
    )


class ServerConfig(BaseModel):
    scan_caps: dict[str, int]
    overrides: dict[str, int]
    agent_instructions: str
    agent_instructions_custom: bool = Field(description="False: the built-in text.")


def _current(services: ServicesDep) -> ServerConfig:
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


@router.get("", summary="Effective run-time settings and the overrides in force")
def show(services: ServicesDep, _: AdminDep) -> ServerConfig:
    return _current(services)


@router.put("", summary="Change run-time settings (takes effect at once)")
def update(body: ConfigUpdate, services: ServicesDep, admin: AdminDep) -> ServerConfig:
    """Takes effect at once: new MCP sessions and ``agnes init`` runs get new instructions."""
    changes = body.scan_caps.model_dump(exclude_unset=True) if body.scan_caps else {}
    for key, value in changes.items():
        if value is None:
            services.server_config.delete(f"scan_caps.{key}")
        else:
            services.server_config.set(f"scan_caps.{key}", int(value), updated_by=admin.user_id)
    params: dict[str, object] = {"scan_caps": changes}
    if body.agent_instructions is not None:
        services.set_agent_instructions(body.agent_instructions, admin.user_id)
        params["agent_instructions_chars"] = len(body.agent_instructions)
    services.audit.record(admin, "server_config.update", params=params)
    return _current(services)
