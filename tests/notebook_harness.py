"""Shared set-up for the notebook tests (:mod:`agnes_mcp.notebook`).

The notebook API is one more face of the workspace backend, so its tests put it next to
the other faces of the same data:

- :func:`isolated_env`: a ``MonkeyPatch`` context (usable from module-scoped fixtures,
  which cannot take pytest's function-scoped ``monkeypatch``) with no ``AGNES_*``
  variable of the shell, and the config and cache homes (``AGNES_CONFIG_HOME``,
  ``XDG_CACHE_HOME``: stored credentials, the outside-a-workspace cache folders) in a
  temporary folder.
- :func:`pulled_notebook`: the analyst's workspace pulled from a demo server, a
  ``Workspace`` from :func:`agnes_mcp.notebook.connect` on it, and the workspace's MCP
  server (the one ``agnes mcp`` serves over stdio) built in-process over the *same*
  backend, so an API call and the matching tool call can be compared.
- :func:`call_tool`: one tool call through ``fastmcp.Client`` in-process, as a
  :class:`ToolAnswer` (structured content, text, error flag).
- :func:`json_rows`: an Arrow table's rows in the form the tools' structured rows carry
  them (JSON values), to compare data, not text.

A test module takes one demo server (``demo_server``, module-scoped in conftest) and
declares its own module fixture over these, e.g.::

    @pytest.fixture(scope="module")
    def nb(demo_server, tmp_path_factory):
        with pulled_notebook(demo_server, tmp_path_factory.mktemp("notebook")) as setup:
            yield setup
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import DemoServer, pull_into_workspace

if TYPE_CHECKING:
    import pyarrow as pa
    from fastmcp import FastMCP

    from agnes_mcp.notebook import Workspace


@contextmanager
def isolated_env(root: Path) -> Iterator[pytest.MonkeyPatch]:
    """The environment of a user with nothing configured: no ``AGNES_*`` variables, empty
    config and cache homes under ``root``. Undone on exit."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, root)
        yield patch


def isolate(patch: pytest.MonkeyPatch, root: Path) -> None:
    """:func:`isolated_env` on a given ``MonkeyPatch`` (a test's own ``monkeypatch``)."""
    for name in list(os.environ):
        if name.startswith("AGNES_"):
            patch.delenv(name)
    patch.setenv("AGNES_CONFIG_HOME", str(root / "config-home"))
    patch.setenv("XDG_CACHE_HOME", str(root / "cache-home"))


@dataclass
class ToolAnswer:
    """What an MCP tool call returned."""

    structured: dict[str, Any]
    text: str
    is_error: bool

    def ok(self) -> dict[str, Any]:
        """The structured content of a successful call (fails the test on a refusal)."""
        assert not self.is_error, self.text
        return self.structured

    def error(self) -> dict[str, Any]:
        """The ``error`` object of a refused call (fails the test on a success)."""
        assert self.is_error, self.text
        return self.structured["error"]  # type: ignore[no-any-return]


def call_tool(mcp: FastMCP, tool: str, **arguments: Any) -> ToolAnswer:
    """Call ``tool`` on ``mcp`` in-process (``fastmcp.Client``), from synchronous code."""
    from fastmcp import Client
    from mcp.types import TextContent

    async def go() -> ToolAnswer:
        async with Client(mcp) as client:
            result = await client.call_tool(tool, arguments, raise_on_error=False)
        first = result.content[0] if result.content else None
        text = first.text if isinstance(first, TextContent) else ""
        return ToolAnswer(result.structured_content or {}, text, result.is_error)

    return asyncio.run(go())


def json_rows(table: pa.Table) -> list[list[Any]]:
    """``table.to_pylist()`` as JSON carries it: the form of a tool's structured rows
    (dates as ISO text, decimals as numbers)."""
    from agnes_mcp.rails.results import json_value

    rows = [[json_value(value) for value in row.values()] for row in table.to_pylist()]
    return json.loads(json.dumps(rows))  # type: ignore[no-any-return]


def as_json(value: Any) -> Any:
    """A pydantic model, or a list of them, as the JSON a tool's structured content holds."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return json.loads(value.model_dump_json())
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return json.loads(json.dumps(value, default=str))


@dataclass
class NotebookSetup:
    """A pulled analyst workspace, the notebook's handle on it and its MCP server."""

    demo: DemoServer
    folder: Path
    ws: Workspace
    mcp: FastMCP

    def tool(self, tool: str, **arguments: Any) -> ToolAnswer:
        """The workspace MCP server's answer to ``tool(**arguments)``."""
        return call_tool(self.mcp, tool, **arguments)


@contextmanager
def pulled_notebook(
    demo: DemoServer, root: Path, token: str | None = None
) -> Iterator[NotebookSetup]:
    """The analyst's (or ``token``'s) workspace pulled under ``root``, opened with
    ``connect(folder, server_url=..., token=...)``, with the stdio MCP server's tools
    (``build_single_user_mcp``) over the workspace's own backend; in an isolated env."""
    from agnes_mcp.mcp_server.server import build_single_user_mcp
    from agnes_mcp.notebook import connect

    chosen = token or demo.analyst_token
    with isolated_env(root):
        folder = pull_into_workspace(demo.live.base_url, chosen, root / "workspace")
        ws = connect(folder, server_url=demo.live.base_url, token=chosen)
        try:
            yield NotebookSetup(demo, folder, ws, build_single_user_mcp(ws.backend))
        finally:
            ws.close()
