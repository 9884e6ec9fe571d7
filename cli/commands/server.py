"""``agnes serve`` and ``agnes demo``: run the server in this process."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cli import exit_codes
from cli.output import counted

if TYPE_CHECKING:
    from agnes_mcp.demo import DemoTokens
    from agnes_mcp.services import Services
    from agnes_mcp.settings import AgnesSettings


def _settings(args: argparse.Namespace) -> AgnesSettings:
    """The settings, with the server's log (see :func:`_logged`) at their ``log_level``."""
    from agnes_mcp.server_log import set_server_log_level
    from agnes_mcp.settings import load_settings

    settings = load_settings(
        Path(args.config) if args.config else None,
        data_dir=args.data_dir,  # as typed: an empty one is refused, not the default
        host=args.host,
        port=args.port,
    )
    set_server_log_level(settings.log_level)
    return settings


def _logged(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a server command with Agnes's own log lines on stderr (warnings while the
    settings are read: a variable that matches no setting; then at their log_level)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from agnes_mcp.server_log import server_log

        with server_log():
            return command(args)

    return run


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _urls(settings: AgnesSettings) -> str:
    base = settings.base_url
    return (
        f"  MCP endpoint   {base}/mcp\n"
        f"  API            {base}/api   (docs: {base}/api/docs)\n"
        f"  Admin app      {base}/admin\n"
        f"  Sign in        {base}/auth/login   (your page: {base}/me)"
    )


@_logged
def serve(args: argparse.Namespace) -> int:
    from agnes_mcp.serve import serve as run_server

    settings = _settings(args)

    def ready(actual: AgnesSettings) -> None:
        _say(f"Agnes is serving {actual.data_dir}\n\n{_urls(actual)}\n\nPress Ctrl-C to stop.")

    run_server(settings, on_ready=ready)
    return exit_codes.OK


def _plugins(base: str, granted: list[str]) -> str:
    """The banner's lines about the sample plugin marketplace (none when it was skipped)."""
    if not granted:
        return ""
    names = ", ".join(g.split("/", 1)[1] for g in granted)
    return (
        f"  uv run agnes marketplace info   # in that folder: plugins granted to you ({names})\n"
        f"  claude plugin marketplace add {base}/marketplace.git   # after agnes init\n"
    )


def _hidden_tables(services: Services, token: str) -> list[str]:
    """The served tables the user of ``token`` may not read (as the grants are now)."""
    from agnes_mcp.resource_types import ResourceType

    principal = services.tokens.authenticate(token)
    granted = services.access.granted(principal, ResourceType.TABLE)
    tables = services.query.catalog.current().tables
    return sorted(t for t in tables if granted is not None and t not in granted)


def _sees(hidden: list[str]) -> str:
    return f"cannot see {', '.join(hidden)}" if hidden else "may read every table"


def _banner(
    settings: AgnesSettings, tokens: DemoTokens, granted: list[str], hidden: list[str]
) -> str:
    base = settings.base_url
    plugins = _plugins(base, granted)
    return f"""
Agnes demo is running on {settings.data_dir}

{_urls(settings)}

  Admin token    {tokens.admin}
                 ({tokens.admin_email})
  Analyst token  {tokens.analyst}
                 ({tokens.analyst_email}; {_sees(hidden)})
  Both are also in {tokens.path} (mode 0600).

Sign in to the admin app at {base}/auth/login with the admin token
(the analyst token opens {base}/me, the analyst's own page).

Try:
  uv run agnes login --server-url {base} --token <admin token>
  uv run agnes admin list-tables
  claude mcp add --transport http agnes {base}/mcp   # then /mcp, Authenticate
  claude mcp add --transport http agnes {base}/mcp --header "Authorization: Bearer <analyst token>"
  mkdir analysis && cd analysis && uv run agnes init --server-url {base} --token <analyst token>
{plugins}
Press Ctrl-C to stop."""


def _granted_plugins(services: Services) -> list[str]:
    """The sample marketplace's plugins granted to the demo's Analysts."""
    from agnes_mcp.demo import ANALYSTS, DEMO_MARKETPLACE
    from agnes_mcp.resource_types import ResourceType

    group = services.groups.by_name(ANALYSTS)
    if group is None:
        return []
    grants = services.grants.all(group_id=group.id, resource_type=ResourceType.MARKETPLACE_PLUGIN)
    return [g.resource_id for g in grants if g.resource_id.startswith(f"{DEMO_MARKETPLACE}/")]


def _check_port(settings: AgnesSettings) -> None:
    """Raise ``BindError`` (naming the port and what to do) when the server could not
    listen where it is asked to; port 0 (any free port) always can."""
    from agnes_mcp.serve import bind

    if settings.port != 0:
        bind(settings.host, settings.port).close()


@_logged
def demo(args: argparse.Namespace) -> int:
    from agnes_mcp.demo import (
        first_sync,
        prepare,
        with_demo_sources,
        with_local_marketplaces,
    )
    from agnes_mcp.serve import serve as run_server
    from agnes_mcp.services import Services, private_data_dir
    from agnes_sync.demo.generator import ensure, read_manifest

    settings = _settings(args)
    _check_port(settings)  # before the data is generated: a taken port is said at once
    private_data_dir(settings.data_dir)  # and a data dir that cannot be one
    root = settings.data_dir / "demo"
    if read_manifest(root) is None:
        _say(f"Generating the demo data in {root} (first run only; ~10 s at full scale)...")
    started = time.perf_counter()
    data, generated = ensure(root, scale=args.scale)
    if generated:
        _say(f"Demo data ready in {time.perf_counter() - started:.1f} s.")
    settings = with_local_marketplaces(with_demo_sources(settings, data))
    services = Services.open(settings)
    try:
        tokens = prepare(services)
        granted = _granted_plugins(services)
        started = time.perf_counter()
        results = first_sync(services, regenerated=generated)
        hidden = _hidden_tables(services, tokens.analyst)
    except BaseException:
        services.close()
        raise
    if results:
        ok = sum(r.status == "ok" for r in results)
        _say(
            f"Synced {ok:,} of {counted(len(results), 'table')} in "
            f"{time.perf_counter() - started:.1f} s."
        )
        for failed in (r for r in results if r.status != "ok"):
            _say(f"  {failed.table_id}: {(failed.error or {}).get('message')}")
    run_server(
        settings, services, on_ready=lambda actual: _say(_banner(actual, tokens, granted, hidden))
    )
    return exit_codes.OK
