"""The hostile corpus again, through a workspace's own query path (what ``agnes query``,
the stdio MCP server and notebooks run): the same policy, checked parse, DuckDB
cross-check and locked sandbox, over parquet fetched by a real ``agnes pull``.

A workspace holds only the tables its user was granted; for a table neither pulled nor in
the user's catalog it asks the server and relays its refusal, so both answer alike
(``table_not_found`` with the server's suggestions); offline it can only say the table is
not here. Remote queries go to the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_mcp.rails.refusals import QueryRefused
from agnes_sync.server_api import ServerApi
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import DemoServer, pull_into_workspace
from tests.rails_corpus import CASES

# The workspace runs local and remote queries (auto is a server-side convenience).
WORKSPACE_CASES = [c for c in CASES if c[0] in ("local", "remote")]


@pytest.fixture(scope="module")
def backend(
    demo_server: DemoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkspaceBackend]:
    root = pull_into_workspace(
        demo_server.live.base_url,
        demo_server.analyst_token,
        tmp_path_factory.mktemp("corpus-workspace"),
    )
    workspace = WorkspaceBackend(
        WorkspacePaths(root), ServerApi(demo_server.live.base_url, demo_server.analyst_token)
    )
    yield workspace
    workspace.close()


@pytest.mark.parametrize(
    ("mode", "sql", "expected"),
    WORKSPACE_CASES,
    ids=[f"{i:03d}" for i in range(len(WORKSPACE_CASES))],
)
def test_corpus_in_a_workspace(
    backend: WorkspaceBackend, mode: str, sql: str, expected: str
) -> None:
    run = backend.query if mode == "local" else backend.query_remote
    if expected == "ok":
        answer = run(sql, 10)
        assert answer.table.num_rows <= 10
        return
    with pytest.raises(QueryRefused) as caught:
        run(sql, 10)
    assert caught.value.code == expected, caught.value.message
    assert caught.value.message and caught.value.hint


def test_an_ungranted_table_gets_the_servers_answer_or_offline_the_local_one(
    backend: WorkspaceBackend,
) -> None:
    with pytest.raises(QueryRefused) as caught:
        backend.query("SELECT * FROM support_tickets", 10)
    assert "support_tickets" not in backend.local.inventory().tables
    assert caught.value.code == "table_not_found"
    offline = WorkspaceBackend(backend.paths, ServerApi("http://127.0.0.1:9", "agnes_x"))
    try:
        with pytest.raises(QueryRefused) as alone:
            offline.query("SELECT * FROM support_tickets", 10)
    finally:
        offline.close()
    assert alone.value.code == "table_not_found"


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("SELECT * FROM a.b.c.d", "at most three parts"),
        ('SELECT * FROM "main.orders"', "quoted whole"),
    ],
)
def test_a_name_no_table_has_keeps_its_own_refusal(
    backend: WorkspaceBackend, sql: str, said: str
) -> None:
    """Relayed to the server as a table it might know, the refusal lost why no table is
    named so: "There is no table 'a.b.c.d' you may read" and nothing more."""
    with pytest.raises(QueryRefused) as caught:
        backend.query(sql, 10)
    assert caught.value.code == "table_not_found" and said in caught.value.message


def test_the_pulled_workspace_holds_what_the_corpus_reads(backend: WorkspaceBackend) -> None:
    inventory = backend.local.inventory()
    assert {"orders", "customers", "products", "order_items"} <= set(inventory.tables)
    assert inventory.remote["web_sessions"]["remote_name"]  # warehouse paths resolve here
    assert Path(backend.paths.root).is_dir()
