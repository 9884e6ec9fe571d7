"""The feed's routes: ``/marketplace.zip``, ``/marketplace.git/...`` (smart HTTP, read-only)
and ``/api/marketplace/info``, each behind the caller's personal access token.

Both channels serve the same files: the caller's feed (the plugins granted to their
groups), built once per distinct feed and cached on disk (:mod:`.feed_cache`). Nothing
blocking runs on the event loop: the feed is resolved and built in worker threads, the
ZIP is streamed from its file and git's pack comes from a ``git http-backend`` process.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from agnes_mcp.api.dependencies import get_services
from agnes_mcp.api.error_handlers import error_response
from agnes_mcp.api.etags import if_none_match
from agnes_mcp.api.routes.well_known import public_base_url
from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import (
    AuthenticationError,
    GitPushRefused,
    MarketplaceFeedChanged,
    RouteNotFound,
    TooManyGitRequests,
)
from agnes_mcp.marketplace.feed import Feed
from agnes_mcp.marketplace.feed_auth import feed_principal, refusal
from agnes_mcp.marketplace.feed_cache import FeedBuilder
from agnes_mcp.marketplace.git_http import (
    SERVICE,
    GitBackendResponse,
    backend_env,
    git_error_text,
)
from agnes_mcp.query.concurrency import QuerySlots
from agnes_mcp.services import Services
from agnes_sync.errors import AgnesError

router = APIRouter(tags=["marketplace"])

ZIP_PATH = "/marketplace.zip"
GIT_PATH = "/marketplace.git"
INFO_PATH = "/api/marketplace/info"
CACHE_CONTROL = "private, no-cache"
# Methods only a push uses (WebDAV, git's old dumb-HTTP push): refused like receive-pack.
_PUSH_METHODS = (
    "PUT",
    "DELETE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
)
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "No personal access token, or a refused one"}
}


# --- the caller and their feed -------------------------------------------------------


def feed_builder(request: Request) -> FeedBuilder:
    """The app's one builder (made on first use, on the event loop: no race)."""
    state = request.app.state
    builder: FeedBuilder | None = getattr(state, "marketplace_feeds", None)
    if builder is None:
        services = get_services(request)
        settings = services.settings.marketplace
        builder = FeedBuilder(
            services.marketplaces.layout,
            settings.feed_cache_entries,
            settings.git_timeout_seconds,
            max_bytes=int(settings.feed_cache_bytes),
        )
        state.marketplace_feeds = builder
    return builder


async def caller_feed(request: Request) -> Feed | Response:
    """The caller's feed, or the 401 to answer with."""
    services: Services = get_services(request)
    try:
        principal: Principal = feed_principal(request, services)
    except AuthenticationError as exc:
        return refusal(exc)
    return await run_in_threadpool(services.marketplaces.feed_for, principal)


async def built(
    request: Request, feed: Feed, ensure: Callable[[FeedBuilder, Feed], Path]
) -> tuple[Feed, Path, ExitStack]:
    """The feed's ZIP or repository, built if needed, leased until the response is sent.
    A feed computed just before a sync replaced one of its plugins is computed again,
    once (the caller gets the new content)."""
    builder = feed_builder(request)
    for attempt in (1, 2):
        lease = ExitStack()
        lease.enter_context(builder.lease(feed.key))
        try:
            return feed, await run_in_threadpool(ensure, builder, feed), lease
        except MarketplaceFeedChanged:
            lease.close()
            again = await caller_feed(request) if attempt == 1 else None
            if not isinstance(again, Feed):
                raise
            feed = again
        except BaseException:
            lease.close()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- the ZIP -------------------------------------------------------------------------


class LeasedFileResponse(FileResponse):
    """A file response that keeps its feed on disk until it is sent (no Last-Modified:
    the archive's content, not its file's age, is what the ETag names)."""

    chunk_size = 1 << 20

    def __init__(
        self, path: Path, stat_result: os.stat_result, lease: ExitStack, headers: dict[str, str]
    ) -> None:
        super().__init__(
            path, stat_result=stat_result, media_type="application/zip", headers=headers
        )
        del self.headers["last-modified"]
        self.lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.lease.close()


@router.get(
    ZIP_PATH,
    summary="The caller's plugins as one Claude Code marketplace, in a deterministic ZIP",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The archive"},
        304: {"description": "Unchanged (If-None-Match names the current ETag)"},
        **_UNAUTHORIZED,
    },
)
async def marketplace_zip(request: Request) -> Response:
    """``.claude-plugin/marketplace.json`` and ``plugins/<marketplace>-<plugin>/`` for
    every plugin granted to one of the caller's groups. The strong ETag is the feed's
    content key: callers with the same grants get the same bytes and the same ETag.
    Personal access token as ``Authorization: Bearer`` or as the Basic password."""
    feed = await caller_feed(request)
    if isinstance(feed, Response):
        return feed
    headers = {"etag": feed.etag, "cache-control": CACHE_CONTROL, "vary": "Authorization"}
    if if_none_match(request.headers.get("if-none-match"), feed.etag):
        return Response(status_code=304, headers=headers)
    feed, path, lease = await built(request, feed, FeedBuilder.ensure_zip)
    headers["etag"] = feed.etag
    try:
        stat_result = await run_in_threadpool(os.stat, path)
    except BaseException:
        lease.close()
        raise
    headers["content-disposition"] = f'attachment; filename="{feed.name}.zip"'
    return LeasedFileResponse(path, stat_result, lease, headers)


# --- git smart HTTP (read-only) -------------------------------------------------------


def refuse_push(request: Request) -> None:
    """Anything naming receive-pack, or a method only pushes use: 403, before all else."""
    named = "receive-pack" in request.url.path.lower() or any(
        "receive-pack" in f"{key}={value}".lower()
        for key, value in request.query_params.multi_items()
    )
    if named or request.method in _PUSH_METHODS:
        raise GitPushRefused("Pushing to the marketplace is refused: it is read-only.")


# git requests running now, per user and in all (each one a git http-backend process).
GIT_SLOTS = QuerySlots(
    "marketplace.git_requests_per_user",
    "marketplace.git_requests",
    what=("git request", "git requests"),
    refusal=TooManyGitRequests,
)


async def serve_git(request: Request, tail: str, query: str) -> Response:
    services: Services = get_services(request)
    try:
        principal = feed_principal(request, services)
    except AuthenticationError as exc:
        return refusal(exc)
    settings = services.settings.marketplace
    lease = ExitStack()
    lease.enter_context(
        GIT_SLOTS.hold(
            principal.user_id,
            per_user=settings.git_requests_per_user,
            total=settings.git_requests,
            timeout_seconds=settings.git_request_seconds,
        )
    )
    try:
        feed = await run_in_threadpool(services.marketplaces.feed_for, principal)
        feed, _, built_lease = await built(request, feed, FeedBuilder.ensure_repo)
    except BaseException:
        lease.close()
        raise
    lease.enter_context(built_lease)  # the feed stays on disk until the response ends
    env = backend_env(
        feed_builder(request).layout.feeds_dir,
        f"/{feed.key}.git/{tail}",
        method=request.method,
        query=query,
        headers=request.headers,
    )
    return GitBackendResponse(
        env,
        on_close=lease.close,
        encoding=request.headers.get("content-encoding"),
        seconds=settings.git_request_seconds,
        plain_errors=_is_git(request),
    )


def for_git(route: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """A git route whose refusals git shows its user: git prints an error answer's body
    (as ``remote: ...`` lines) only when it is plain text, so a git client gets the
    message and hint as text (other clients keep the JSON shape)."""

    @functools.wraps(route)
    async def answer(request: Request) -> Response:
        try:
            response = await route(request)
        except AgnesError as exc:
            response = error_response(exc)
        if response.status_code < 400 or not _is_git(request):
            return response
        return _as_text(response)

    return answer


def _is_git(request: Request) -> bool:
    return request.headers.get("user-agent", "").lower().startswith("git/")


def _as_text(response: Response) -> Response:
    try:
        error = json.loads(bytes(response.body))["error"]
        said = git_error_text(str(error["message"]), error.get("hint"))
    except (ValueError, KeyError, TypeError):
        return response
    text = PlainTextResponse(said, response.status_code)
    for name, value in response.raw_headers:  # every challenge (Basic and Bearer) kept
        if name not in (b"content-type", b"content-length"):
            text.raw_headers.append((name, value))
    return text


@router.get(GIT_PATH + "/info/refs", include_in_schema=False)
@for_git
async def git_info_refs(request: Request) -> Response:
    refuse_push(request)
    if request.query_params.get("service") != SERVICE:
        raise RouteNotFound(
            "The marketplace speaks git's smart HTTP protocol only (service=git-upload-pack).",
            hint="Clone it with git: 'git clone <server>/marketplace.git'.",
        )
    return await serve_git(request, "info/refs", f"service={SERVICE}")


@router.post(GIT_PATH + "/" + SERVICE, include_in_schema=False)
@for_git
async def git_upload_pack(request: Request) -> Response:
    refuse_push(request)
    return await serve_git(request, SERVICE, "")


@router.api_route(
    GIT_PATH,
    methods=["GET", "POST", "HEAD", "OPTIONS", *_PUSH_METHODS],
    include_in_schema=False,
)
@router.api_route(
    GIT_PATH + "/{rest:path}",
    methods=["GET", "POST", "HEAD", "OPTIONS", *_PUSH_METHODS],
    include_in_schema=False,
)
@for_git
async def git_elsewhere(request: Request) -> Response:
    """Pushes are refused (403); git's dumb HTTP paths and the rest are not served (404)."""
    refuse_push(request)
    raise RouteNotFound(
        f"{request.url.path} is not served: the marketplace repository answers git's smart "
        "HTTP protocol only (clone and fetch).",
        hint="Clone it with git: 'git clone <server>/marketplace.git'.",
    )


# --- what the caller gets ------------------------------------------------------------


class FeedPlugin(BaseModel):
    name: str = Field(description="The name Claude Code shows (and installs it by).")
    plugin: str = Field(description="The name in the plugin's own plugin.json.")
    marketplace: str = Field(description="The slug of the marketplace it comes from.")
    grant_id: str = Field(description="What grants name it by: '<marketplace>/<plugin>'.")
    version: str | None = Field(description="Its version, if it declares one.")
    description: str | None = Field(description="Its description, if it has one.")
    source: str = Field(description="Its folder in the served tree, as marketplace.json lists it.")


class FeedInfo(BaseModel):
    marketplace: str = Field(description="The marketplace's name in Claude Code.")
    etag: str = Field(description="The ZIP's strong ETag (quoted): changes with the content.")
    key: str = Field(description="The feed's content key (the ETag without quotes).")
    git_url: str = Field(description="Clone URL of the feed (git smart HTTP, read-only).")
    zip_url: str = Field(description="URL of the feed as a ZIP.")
    plugins: list[FeedPlugin] = Field(description="The plugins granted to the caller's groups.")


def feed_info(feed: Feed, base: str) -> FeedInfo:
    return FeedInfo(
        marketplace=feed.name,
        etag=feed.etag,
        key=feed.key,
        git_url=base + GIT_PATH,
        zip_url=base + ZIP_PATH,
        plugins=[
            FeedPlugin(
                name=entry.shown_name,
                plugin=str(entry.plugin.manifest.get("name", entry.plugin.name)),
                marketplace=entry.plugin.marketplace,
                grant_id=entry.plugin.grant_id,
                version=entry.plugin.version,
                description=entry.plugin.description,
                source=f"./{entry.folder}",
            )
            for entry in feed.entries
        ],
    )


@router.get(
    INFO_PATH,
    summary="The caller's marketplace: its plugins, URLs and ETag",
    response_model=FeedInfo,
    responses=_UNAUTHORIZED,
)
async def marketplace_info(request: Request) -> Response:
    """What ``/marketplace.zip`` and ``/marketplace.git`` serve the caller, without
    building either. Personal access token as ``Authorization: Bearer`` or Basic."""
    feed = await caller_feed(request)
    if isinstance(feed, Response):
        return feed
    services = get_services(request)
    base = public_base_url(services.settings, request.url.scheme, request.headers.get("host"))
    info = feed_info(feed, base)
    return JSONResponse(info.model_dump(mode="json"), headers={"cache-control": CACHE_CONTROL})
