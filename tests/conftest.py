"""Shared fixtures: real DuckDB files in tmp dirs and a real uvicorn server on a free port."""

from __future__ import annotations

import gc
import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from agnes_mcp.api.app import create_app
from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.bootstrap_admin import ensure_admin
from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation
from agnes_mcp.serve import bind, uvicorn_config
from agnes_mcp.services import Services
from agnes_mcp.settings import AgnesSettings, load_settings
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.users import User
from tests.utc_day import wait_for_a_whole_day

pytest_plugins = [
    "tests.cli_harness",  # the CLI tests' workspace fixture
    "tests.browser_harness",  # one Chromium per test session (Playwright, Debian chromium)
]

_counter = itertools.count()

# Seconds a test waits for what must happen, or before letting go of what it holds for
# another thread (an Event it sets itself): never reached when things work, so long that a
# busy machine does not reach it either. A wait of 5-10 s could run out there, or a holder let go early.
SIGNAL_WAIT = 60.0


def freeze_what_lives() -> None:
    """What is alive now (the modules and schemas the suite imported) out of the cyclic
    collector's sight, as ``agnes serve`` freezes its start-up heap: each full collection
    of this process walked ~1.8 million objects (up to 1.1 s a time, ~26 s of a suite
    run). Garbage the tests make later is collected as ever."""
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    freeze_what_lives()


@pytest.fixture(autouse=True)
def _within_one_utc_day() -> None:
    """A test never passes UTC midnight (see :mod:`tests.utc_day`)."""
    time.sleep(wait_for_a_whole_day(datetime.now(UTC)))


@pytest.fixture(autouse=True)
def _fresh_parse_cache() -> Iterator[None]:
    """Each test checks its SQL afresh (tests switch walls off and on)."""
    from agnes_mcp.rails.checked_parse import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.fixture(scope="session", autouse=True)
def _warm_servers_stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A test that runs `agnes` with an environment rebuilt without AGNES_* may start a
    warm query server (cli.warm_query): it starts in this session's own runtime folder,
    and every server there is stopped when the session ends."""
    from cli.warm_query import servers

    runtime = tmp_path_factory.mktemp("xdg-runtime")
    runtime.chmod(0o700)
    previous = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        yield
    finally:
        servers.stop(runtime / "agnes")
        if previous is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def _private_matplotlib_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Matplotlib (the admin app's plots, pandas' ``.plot``) keeps its config and font
    cache in this session's folder, not in ``~/.config/matplotlib``; one for the session
    (not per test, as ``XDG_CACHE_HOME`` is), so its font cache is built once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("matplotlib")))
        yield


@pytest.fixture(autouse=True)
def _clean_agnes_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No AGNES_* variable of the developer's shell leaks into a test; no real ~/.config,
    ~/.cache (notebooks outside a workspace keep a folder there) or ~/.gitconfig."""
    for name in list(os.environ):
        if name.startswith("AGNES_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
    monkeypatch.setenv("AGNES_WARM_QUERY", "0")  # no warm query server outlives a test
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
    # 'agnes init' registers a git credential helper in the user's global git config: never
    # the developer's own ~/.gitconfig in a test.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path_factory.mktemp("git-home") / "config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def make_settings(data_dir: Path, **overrides: object) -> AgnesSettings:
    return load_settings(data_dir=data_dir, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> AgnesSettings:
    return make_settings(tmp_path / "data", write_behind_seconds=0.05)


@pytest.fixture
def services(settings: AgnesSettings) -> Iterator[Services]:
    opened = Services.open(settings)
    try:
        yield opened
    finally:
        opened.close()


def local_table(table_id: str, *files: Path | str) -> CatalogTable:
    """A local catalog table read from ``files`` (for sandbox tests)."""
    return CatalogTable(
        id=table_id,
        description="",
        query_mode="local",
        source="s",
        rows=None,
        size_bytes=None,
        extracted_at=None,
        files=tuple(str(f) for f in files),
    )


def remote_table(
    table_id: str, location: RemoteLocation, *, rows: int, partition_by: str
) -> CatalogTable:
    """A remote catalog table in a DuckDB warehouse (for engine tests)."""
    return CatalogTable(
        id=table_id,
        description="",
        query_mode="remote",
        source=location.source,
        rows=rows,
        size_bytes=None,
        extracted_at=None,
        remote=location,
        partition_by=partition_by,
    )


def unique_email(label: str = "user") -> str:
    return f"{label}{next(_counter)}@example.com"


def add_user(services: Services, groups: tuple[str, ...] = (), email: str | None = None) -> User:
    user = services.users.add(email or unique_email(), "Test User")
    for group_id in groups:
        services.groups.add_member(group_id, user.id, MembershipSource.ADMIN)
    return user


def token_for(services: Services, user: User, *, admin: bool = False) -> str:
    scopes = [TokenScope.DATA.value] + ([TokenScope.ADMIN.value] if admin else [])
    _, raw = services.tokens.create(user.id, "test", scopes)
    return raw


@dataclass
class LiveServer:
    base_url: str
    services: Services
    admin_token: str
    app: Any = None  # the FastAPI app it serves (its routes, its state)

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def running_server(data_dir: Path, **overrides: object) -> Iterator[LiveServer]:
    """The real app under uvicorn on 127.0.0.1 and a free port, in a thread."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = load_settings(
        data_dir=data_dir, port=port, write_behind_seconds=0.05, log_level="warning", **overrides
    )
    services = Services.open(settings)
    token_file = ensure_admin(services)
    assert token_file is not None
    # The tests' own admin token: the bootstrap token retires once another admin acts.
    bootstrap = services.tokens.authenticate(token_file.read_text().strip(), record_use=False)
    admin_token = token_for(services, services.users.get(bootstrap.user_id), admin=True)
    app = create_app(services)
    server = uvicorn.Server(uvicorn_config(settings, app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", services, admin_token, app)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        services.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with no data sources, shared by the whole session."""
    with running_server(tmp_path_factory.mktemp("live") / "data") as server:
        yield server


@pytest.fixture
def source_root(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    return root


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A small DuckDB 'warehouse' with an events table ordered by day."""
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE events AS SELECT range AS id, DATE '2026-01-01' + (range // 100)::INTEGER "
        "AS day, ['a', 'b', 'c'][1 + range % 3] AS kind, range * 1.5 AS value FROM range(3000)"
    )
    con.close()
    return path


@pytest.fixture
def synced(tmp_path: Path, source_root: Path, warehouse: Path) -> Iterator[Services]:
    """Services with three configured sources (files, a warehouse, the sample connector)."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        write_behind_seconds=0.05,
        sync_backoff_seconds=0.01,
        sources={
            "files": {"connector": "files", "options": {"path": str(source_root)}},
            "warehouse": {"connector": "duckdb_warehouse", "options": {"path": str(warehouse)}},
            "sample": {"connector": "sample"},
        },
    )
    opened = Services.open(settings)
    try:
        yield opened
    finally:
        opened.close()


def register(services: Services, **fields: object):
    """Validate and store a registration, as the API does."""
    from agnes_sync.table_spec import TableSpec

    spec = TableSpec(**fields)  # type: ignore[arg-type]
    services.sync.validate(spec)
    return services.registry.add(spec)


@dataclass
class DemoServer:
    live: LiveServer
    admin_token: str
    analyst_token: str

    def client(self, who: str = "analyst") -> httpx.Client:
        token = self.analyst_token if who == "analyst" else self.admin_token
        return self.live.client(token)


@contextmanager
def running_demo(root: Path, scale: float = 0.002, **overrides: object) -> Iterator[DemoServer]:
    """The demo company at a tiny scale, registered, synced and served, with its sample
    plugin marketplace (a local repository: ``marketplace.allow_local`` is on)."""
    from agnes_mcp.demo import demo_sources, first_sync, prepare
    from agnes_sync.demo.generator import ensure

    data, _ = ensure(root / "demo-data", scale=scale)
    sources = {k: v.model_dump() for k, v in demo_sources(data, root / "data").items()}
    extra = overrides.pop("marketplace", None)
    marketplace = {"allow_local": True, **(extra if isinstance(extra, dict) else {})}
    # the demo's tables are tiny here: converted anyway, so queries take a server's path
    overrides.setdefault("query_native_table_min_bytes", 0)
    with running_server(
        root / "data",
        sources=sources,
        scheduler_enabled=False,
        marketplace=marketplace,
        **overrides,
    ) as live:
        tokens = prepare(live.services)
        results = first_sync(live.services)
        assert all(r.status == "ok" for r in results), [r.error for r in results]
        # queries read the tables as a running server does: converted (native_tables)
        assert live.services.query.sandboxes.wait_converted(60)
        yield DemoServer(live, tokens.admin, tokens.analyst)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(tmp_path_factory.mktemp("demo-server")) as server:
        yield server


def empty_workspace(folder: Path) -> Path:
    """``folder`` made a workspace with nothing pulled yet: the ``.agnes/`` that ``agnes
    init --no-pull`` makes (without its Claude Code wiring). The CLI never makes one for
    its other commands: they refuse a folder without it."""
    from agnes_sync.workspace.layout import WorkspacePaths

    WorkspacePaths(folder).ensure()
    return folder


@contextmanager
def pulled_workspace(demo: DemoServer, folder: Path) -> Iterator[WorkspaceBackend]:
    """The demo analyst's workspace in ``folder``, pulled, as ``agnes mcp`` serves it."""
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths

    pull_into_workspace(demo.live.base_url, demo.analyst_token, folder)
    backend = WorkspaceBackend(
        WorkspacePaths(folder), ServerApi(demo.live.base_url, demo.analyst_token)
    )
    try:
        yield backend
    finally:
        backend.close()


def pull_into_workspace(base_url: str, token: str, workspace: Path) -> Path:
    """A workspace holding the token's granted tables, fetched by a real ``agnes pull``."""
    from agnes_sync.pull.pull import pull
    from agnes_sync.server_api import ServerApi
    from agnes_sync.workspace.layout import WorkspacePaths

    api = ServerApi(base_url, token)
    try:
        summary = pull(WorkspacePaths(workspace), api)
    finally:
        api.close()
    assert summary.failed == [] and summary.downloaded > 0, summary.as_dict()
    return workspace
