"""Distribution to workspaces (API v1): the caller's manifest, file downloads with strong
ETags and ranges, uploads from ``agnes push``, and the agent instructions for CLAUDE.md."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.etags import if_none_match
from agnes_mcp.distribution.files import resolve
from agnes_mcp.distribution.uploads import UploadStore
from agnes_sync.manifest import Manifest

router = APIRouter(tags=["distribution"])
PARQUET = "application/vnd.apache.parquet"


class ParquetResponse(FileResponse):
    """A file streamed from disk in 1 MiB reads (Starlette's 64 KiB default costs a thread
    hop per 64 KiB: ~16,000 a gigabyte); memory stays at one chunk per download."""

    chunk_size = 1 << 20


@router.get(
    "/api/sync/manifest",
    summary="What the caller's workspace should hold (granted, distributed tables)",
    response_model=Manifest,
)
def manifest(request: Request, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Served from state (no parquet is read); records the caller's last pull. The ETag
    covers what the manifest lists: ``If-None-Match`` with it answers 304 while nothing
    the caller may pull has changed."""
    text, etag = services.manifests.build(principal)
    headers = {"etag": f'"{etag}"', "cache-control": "private, no-cache"}
    if if_none_match(request.headers.get("if-none-match"), headers["etag"]):
        return Response(status_code=304, headers=headers)
    return Response(text, media_type="application/json", headers=headers)


@router.get(
    "/api/data/{table_id}/download",
    summary="One file of a table, with its content hash as a strong ETag",
    responses={
        200: {"content": {PARQUET: {}}},
        206: {"description": "A byte range (Range header)"},
        304: {"description": "Unchanged (If-None-Match)"},
    },
)
def download(
    table_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    part: str | None = Query(
        default=None, max_length=1000, description="A file path from the manifest."
    ),
) -> Response:
    chosen = resolve(services.access, services.query.catalog.current(), principal, table_id, part)
    etag = f'"{chosen.content_hash}"'
    headers = {"etag": etag, "cache-control": "private, no-cache", "accept-ranges": "bytes"}
    if if_none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    services.audit.record(
        principal,
        "data.download",
        resource=table_id,
        params={
            "part": chosen.relative,
            "size": chosen.size_bytes,
            "range": request.headers.get("range"),
        },
    )
    return ParquetResponse(chosen.path, media_type=PARQUET, headers=headers)


class UploadResult(BaseModel):
    hash: str
    size: int
    stored: bool


def _store(services: ServicesDep) -> UploadStore:
    settings = services.settings
    return UploadStore(
        settings.data_dir / "uploads",
        int(settings.max_upload_bytes),
        int(settings.max_upload_bytes_per_user),
    )


async def _upload(
    kind: str,
    name: str,
    workspace: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> UploadResult:
    services.access.require_data_scope(principal)
    declared = request.headers.get("x-agnes-content-hash")
    result = await _store(services).receive(
        principal.user_id, kind, name, workspace, request.stream(), declared
    )
    services.audit.record(
        principal,
        f"upload.{kind}",
        resource=name,
        params={
            "hash": result.hash,
            "size": result.size,
            "stored": result.stored,
            "workspace": workspace,
        },
    )
    return UploadResult(hash=result.hash, size=result.size, stored=result.stored)


@router.post("/api/upload/sessions", summary="Upload one Claude Code session transcript (.jsonl)")
async def upload_session(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    name: str = Query(max_length=255, description="The transcript's file name."),
    workspace: str = Query(default="", max_length=500, description="Where it was recorded."),
) -> UploadResult:
    """The raw file is the request body; X-Agnes-Content-Hash (BLAKE3) is checked.
    The same content twice is stored once."""
    return await _upload("sessions", name, workspace, request, services, principal)


@router.post("/api/upload/local-md", summary="Upload a workspace's CLAUDE.local.md")
async def upload_local_md(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    workspace: str = Query(default="", max_length=500),
) -> UploadResult:
    return await _upload("local-md", "CLAUDE.local.md", workspace, request, services, principal)


@router.get("/api/upload/{kind}/{digest}", summary="Whether an upload with this hash is stored")
def uploaded(
    kind: Literal["sessions", "local-md"],
    digest: str,
    services: ServicesDep,
    principal: PrincipalDep,
) -> dict[str, bool]:
    return {"stored": _store(services).has(principal.user_id, kind, digest)}


class Instructions(BaseModel):
    claude_md: str


@router.get("/api/workspace/instructions", summary="The agent rails for a workspace's CLAUDE.md")
def instructions(services: ServicesDep, principal: PrincipalDep) -> Instructions:
    services.access.require_data_scope(principal)
    return Instructions(claude_md=services.agent_instructions())
