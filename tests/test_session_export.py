"""An agent's session as a notebook (``agnes notebook export``, ``GET /api/session/export``,
the ``session_export`` tool): a mixed session run through MCP (allowed and refused calls,
a remote query, a snapshot, a metric), exported, checked with ``nbformat``, executed in a
real kernel with ``nbclient``, and its results compared with what the session got.

Two sources: the server's audit log (a session over streamable HTTP with the official
``mcp`` client; exported through the tool's download URL, the REST route and the CLI) and
a workspace's own log (the stdio tool surface in-process over a pulled workspace).
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import nbformat
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from nbclient import NotebookClient

from agnes_mcp.session_export import audit_steps, code_text, notebook_json
from agnes_mcp.session_export.refusals import SinceInvalid
from agnes_mcp.session_export.steps import Step
from agnes_mcp.session_export.window import MAX_BACK, parse_since
from agnes_mcp.session_export.workspace_log import QueryLog
from cli.main import main
from tests.conftest import DemoServer
from tests.notebook_harness import NotebookSetup, isolate, pulled_notebook

KERNEL = "python3"
CELL_TIMEOUT = 120
STEP_VALUES = "AGNES-STEPS "
# Prints what every step_N variable holds, in the tools' JSON row form, once the notebook ran.
READ_STEPS = f"""
import json as _json
from agnes_mcp.rails.results import rows_of as _rows_of
_found = {{}}
for _name, _value in list(globals().items()):
    if _name.startswith("step_") and hasattr(_value, "arrow"):
        _found[_name] = {{"rows": _rows_of(_value.arrow()), "row_count": _value.row_count}}
    elif _name.startswith("step_") and hasattr(_value, "rows"):
        _found[_name] = {{"row_count": _value.rows}}
print({STEP_VALUES!r} + _json.dumps(_found))
"""
# SQL no generated code may mangle: quotes of every kind, a backslash, several lines.
ODD_SQL = (
    "SELECT 'O''Brien \\ \"\"\" ''''''' AS \"odd \"\"name\"\"\", count(*) AS n\n"
    "FROM customers -- `backticks` and a {brace}\n"
)
REFUSED_SQL = "SELECT device, count(*) AS sessions FROM web_sessions GROUP BY device"
METRIC = {
    "id": "revenue/total_revenue",
    "dimensions": ["channel"],
    "grain": "month",
    "time_range": {"start": "2026-01-01", "end": "2026-07-01"},
}


# --- generated code and markdown ---------------------------------------------------------------


ODD_TEXTS = [
    "plain",
    "it's",
    'say "hi"',
    "'''",
    '"""',
    "back\\slash",
    "line one\nline two\r\nthree",
    "tab\tand\x00nul",
    "ünïcödé ✓",
    "') ; import os; os.system('x') #",
]


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_generated_calls_carry_every_text_as_a_literal(text: str) -> None:
    step = Step(
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        tool="snapshot_create",
        result="ok",
        arguments={
            "table": text,
            "select": [text, "b"],
            "where": text,
            "name": text,
            "order_by": [text],
            "limit": 5,
        },
    )
    source = code_text.step_call(step, "step_1")
    assert source is not None
    call = ast.parse(source).body[0]
    assert isinstance(call, ast.Assign) and isinstance(call.value, ast.Call)
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.value.keywords}
    assert ast.literal_eval(call.value.args[0]) == text
    assert keywords == {
        "select": [text, "b"],
        "name": text,
        "where": text,
        "limit": 5,
        "order_by": [text],
    }
    query = Step(at=step.at, tool="query", result="ok", arguments={"sql": text, "limit": 3})
    source = code_text.step_call(query, "step_2")
    assert source is not None
    sent = ast.parse(source).body[0]
    assert isinstance(sent, ast.Assign) and isinstance(sent.value, ast.Call)
    assert ast.literal_eval(sent.value.args[0]) == text
    commented = code_text.commented(source)
    assert all(line.startswith("#") for line in commented.splitlines())
    assert ast.parse(commented).body == []  # runs as nothing


def test_markdown_shows_hostile_text_as_text() -> None:
    step = Step(
        at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        tool="query",
        result="table_not_granted",
        arguments={"sql": "SELECT '```' AS fence"},
        sql="SELECT '```' AS fence",
        message="<script>alert(1)</script> *not bold* [link](http://x)",
        hint="Ask an admin | or `not`",
    )
    text = notebook_json.step_text(1, step, None)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "\\*not bold\\*" in text and "\\[link\\]" in text
    assert "````sql\nSELECT '```' AS fence\n````" in text  # the fence outruns the SQL's


def test_a_built_notebook_is_valid_nbformat_4_5() -> None:
    at = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    steps = [
        Step(at=at, tool="query", result="ok", arguments={"sql": "SELECT 1", "limit": None}),
        Step(at=at, tool="query", result="sql_parse_error", arguments={"sql": "SELEC"}),
        Step(at=at, tool="snapshot_create", result="ok", arguments={"table": "t"}),
    ]
    origin = notebook_json.Origin("ana@example.com", "http://x", "a test", at)
    notebook, summary = notebook_json.export(
        steps, origin, session="s1", since=None, until=None, found=3
    )
    nbformat.validate(nbformat.from_dict(notebook))
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert (summary.steps, summary.ran, summary.refused, summary.not_replayable) == (3, 1, 1, 1)
    sources = ["".join(cell["source"]) for cell in notebook["cells"]]
    assert sources[1].startswith("from agnes_mcp.notebook import connect")
    assert "agnes[notebook]" in sources[0] and "AGNES_TOKEN" in sources[0]
    runnable = [c for c in notebook["cells"] if c["metadata"].get("agnes")]
    assert len(runnable) == 1  # the refused step is commented, the snapshot lacks its spec


@pytest.mark.parametrize(
    ("text", "back"),
    [("30m", 1800), ("2h", 7200), ("1d", 86400), ("1W", 7 * 86400)],
)
def test_since_takes_durations(text: str, back: int) -> None:
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    assert parse_since(text, now) == now - dt.timedelta(seconds=back)


@pytest.mark.parametrize(
    "text",
    [
        "9999999h",
        "0000000001w",
        "9" * 40 + "d",
        "9" * 5000 + "s",
        "9999999999w",  # 10 to 12 digits of days or weeks are past what a timedelta holds
        "999999999999d",
        "999999999999w",
    ],
)
def test_a_long_duration_is_one_reaching_back_ten_years_at_most(text: str) -> None:
    """A count of 7 digits or more was refused as 'neither a duration (30m, 2h, 1d, 1w)
    nor an ISO time'; any count is a duration, and at most MAX_BACK. One of 10 to 12
    digits of days or weeks overflowed a timedelta: the MCP tool's masked error, a 500
    from the API and a traceback from 'agnes notebook export'."""
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    expected = dt.timedelta(weeks=1) if text == "0000000001w" else MAX_BACK
    assert parse_since(text, now) == now - expected


def test_since_takes_iso_times_as_utc_and_refuses_the_rest() -> None:
    assert parse_since("2026-05-01T10:00:00") == dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)
    assert parse_since("2026-05-01T12:00:00+02:00") == dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)
    with pytest.raises(SinceInvalid):
        parse_since("yesterday")


def test_an_audit_row_with_cut_sql_is_shown_not_run() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    whole = {"sql": "SELECT 1", "fingerprint": "f", "rows": 1, "engine": "duckdb (server)"}
    cut = {**whole, "sql": "SELECT " + "x" * 93, "sql_chars": 250_000}
    old = {**whole, "sql": "S" * audit_steps.OLD_SQL_CUT}  # before the audit kept it whole
    exact = {**old, "sql_chars": audit_steps.OLD_SQL_CUT}  # now: that long, and whole
    rows = (whole, cut, old, exact)
    steps = [audit_steps.step_of(at, "query", None, json.dumps(p), "ok") for p in rows]
    assert [s.sql_cut for s in steps if s] == [False, True, True, False]
    notebook, summary = notebook_json.export(
        [s for s in steps if s],
        notebook_json.Origin(None, None, "test", at),
        session=None,
        since=None,
        until=None,
        found=4,
    )
    assert (summary.ran, summary.not_replayable) == (2, 2)
    text = "".join("".join(c["source"]) for c in notebook["cells"])
    assert text.count("Not run here") == 2


def test_the_workspace_log_survives_rotation_and_an_unwritable_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agnes_mcp.session_export.workspace_log as workspace_log

    log = QueryLog(tmp_path / "log" / "queries.jsonl", session="s")
    monkeypatch.setattr(workspace_log, "ROTATE_BYTES", 60)  # about three lines
    for n in range(6):
        log.append({"tool": "query", "n": n})
    assert log.previous.exists()
    kept = [e["n"] for e in log.entries()]
    assert kept == sorted(kept) and kept[-1] == 5 and len(kept) < 6  # the oldest went
    blocked = tmp_path / "file"
    blocked.write_text("")
    QueryLog(blocked / "log" / "queries.jsonl").append({"tool": "query"})  # no exception


# --- executing a notebook --------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python3`` pinned to this interpreter, from a private ``JUPYTER_PATH``."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    jupyter = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter / "kernels" / KERNEL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(jupyter / "runtime"))
        patch.setenv("IPYTHONDIR", str(jupyter / "ipython"))
        assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable
        yield KERNEL


def execute(notebook: dict[str, Any], kernel: str, folder: Path) -> dict[str, Any]:
    """Run the notebook in ``folder`` (a failing cell raises); what each step_N holds."""
    nb = nbformat.reads(json.dumps(notebook), as_version=4)  # as Jupyter opens the file
    nbformat.validate(nb)
    nb.cells.append(nbformat.v4.new_code_cell(READ_STEPS))
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name=kernel, resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (cell.source, output)
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    line = next(x for x in printed.splitlines() if x.startswith(STEP_VALUES))
    return json.loads(line.removeprefix(STEP_VALUES))  # type: ignore[no-any-return]


def step_numbers(notebook: dict[str, Any]) -> dict[str, int]:
    """``tool:n`` -> step number, over the notebook's metadata (nth call of each tool)."""
    numbers: dict[str, int] = {}
    counts: dict[str, int] = {}
    for step in notebook["metadata"]["agnes"]["steps"]:
        counts[step["tool"]] = counts.get(step["tool"], 0) + 1
        numbers[f"{step['tool']}:{counts[step['tool']]}"] = step["step"]
    return numbers


def cell_text(notebook: dict[str, Any], cell_id: str) -> str:
    cell = next(c for c in notebook["cells"] if c["id"] == cell_id)
    return "".join(cell["source"])


@dataclass
class Session:
    """What the session's calls returned, in call order per tool."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_replay(notebook: dict[str, Any], session: Session, values: dict[str, Any]) -> None:
    """Each step the notebook ran got what the session got."""
    numbers = step_numbers(notebook)
    recorded = {s["step"]: s for s in notebook["metadata"]["agnes"]["steps"]}
    for key, answer in session.results.items():
        n = numbers[key]
        got = values[f"step_{n}"]
        if "rows" in answer and isinstance(answer["rows"], list):
            assert got["rows"] == answer["rows"], key
            assert got["row_count"] == answer["row_count"] == recorded[n]["rows"], key
        else:  # a snapshot
            assert got["row_count"] == answer["rows"] == recorded[n]["rows"], key
    for key, error in session.errors.items():
        n = numbers[key]
        assert f"step_{n}" not in values  # shown, not run
        shown = cell_text(notebook, f"step-{n}")
        assert error["code"] in shown and "Hint" in shown
        assert cell_text(notebook, f"step-{n}-refused").startswith("# Refused in the session")


# --- the server: a session over streamable HTTP ------------------------------------------------


@asynccontextmanager
async def over_http(demo: DemoServer) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {demo.analyst_token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{demo.live.base_url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


async def server_session(demo: DemoServer) -> tuple[Session, dict[str, Any]]:
    """A mixed session; the session_export tool's answer at its end."""
    got = Session()

    async def call(key: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answer = await mcp.call_tool(tool, arguments)
        content = answer.structured_content or {}
        if answer.is_error:
            got.errors[key] = content["error"]
        else:
            got.results[key] = content
        return content

    async with over_http(demo) as mcp:
        await call("query:1", "query", {"sql": "SELECT count(*) AS n FROM customers"})
        await call("query:2", "query", {"sql": REFUSED_SQL})
        latest = await call(
            "query_remote:1",
            "query_remote",
            {"sql": "SELECT max(event_date) AS d FROM web_sessions"},
        )
        since = dt.date.fromisoformat(latest["rows"][0][0]) - dt.timedelta(days=10)
        await call(
            "snapshot_create:1",
            "snapshot_create",
            {
                "table": "web_sessions",
                "select": ["session_id", "event_date", "device"],
                "where": f"event_date > DATE '{since}'",
                "name": "recent_sessions",
            },
        )
        await call(
            "query:3",
            "query",
            {"sql": "SELECT device, count(*) AS n FROM recent_sessions GROUP BY 1 ORDER BY 1"},
        )
        await call("metric_query:1", "metric_query", METRIC)
        await call("query:4", "query", {"sql": ODD_SQL, "limit": 5})
        dropped = await mcp.call_tool("snapshot_drop", {"name": "recent_sessions"})
        assert not dropped.is_error, dropped.content
        exported = await mcp.call_tool("session_export", {})
    assert not exported.is_error, exported.content
    return got, exported.structured_content or {}


@pytest.fixture(scope="module")
def server_run(demo_server: DemoServer) -> tuple[Session, dict[str, Any]]:
    return asyncio.run(server_session(demo_server))


def test_the_session_export_tool_gives_a_download_handle(
    demo_server: DemoServer, server_run: tuple[Session, dict[str, Any]]
) -> None:
    session, exported = server_run
    assert exported["session"] and exported["path"] is None
    assert (exported["steps"], exported["ran"], exported["refused"]) == (8, 7, 1)
    assert session.errors["query:2"]["code"] == "remote_table_needs_snapshot"
    with demo_server.client() as http:
        response = http.get(exported["download_url"].removeprefix(demo_server.live.base_url))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-ipynb+json")
        assert "attachment" in response.headers["content-disposition"]
        notebook = response.json()
        nbformat.validate(nbformat.from_dict(notebook))
        assert notebook["metadata"]["agnes"]["session"] == exported["session"]
        assert len(notebook["metadata"]["agnes"]["steps"]) == 8
        # someone else's session is not yours to read
        with demo_server.client("admin") as admin:
            other = admin.get("/api/session/export", params={"session": exported["session"]})
        assert other.status_code == 404 and other.json()["error"]["code"] == "session_empty"
        bad = http.get("/api/session/export", params={"since": "last tuesday"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "since_invalid"
    with demo_server.live.client() as anonymous:  # no token: nothing, not even a count
        refused = anonymous.get("/api/session/export", params={"session": exported["session"]})
        assert refused.status_code == 401 and "X-Agnes-Steps" not in refused.headers


def test_the_server_session_replays_in_a_kernel(
    demo_server: DemoServer,
    server_run: tuple[Session, dict[str, Any]],
    kernel: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, exported = server_run
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    folder = tmp_path / "outside"
    folder.mkdir()
    monkeypatch.chdir(folder)
    out = folder / "session.ipynb"
    assert main(["notebook", "export", "--session", exported["session"], "-o", str(out)]) == 0
    notebook = json.loads(out.read_text())
    nbformat.validate(nbformat.from_dict(notebook))
    meta = notebook["metadata"]["agnes"]
    assert meta["user"] and meta["source"] == "the server's audit log"
    assert [s["tool"] for s in meta["steps"]] == [
        "query",
        "query",
        "query_remote",
        "snapshot_create",
        "query",
        "metric_query",
        "query",
        "snapshot_drop",  # audited now: a replay takes back what the session took back
    ]
    numbers = step_numbers(notebook)
    drop_code = cell_text(notebook, f"step-{numbers['snapshot_drop:1']}-code")
    assert "ws.snapshot_drop('recent_sessions')" in drop_code
    snapshot_code = cell_text(notebook, f"step-{numbers['snapshot_create:1']}-code")
    assert "ws.snapshot(" in snapshot_code and "name='recent_sessions'" in snapshot_code
    metric_code = cell_text(notebook, f"step-{numbers['metric_query:1']}-code")
    assert "ws.metric(" in metric_code and "grain='month'" in metric_code

    values = execute(notebook, kernel, folder)
    check_replay(notebook, session, values)
    assert (
        values[f"step_{numbers['snapshot_drop:1']}"]["row_count"]
        == (values[f"step_{numbers['snapshot_create:1']}"]["row_count"])
    )

    with demo_server.client() as http:
        by_since = http.get("/api/session/export", params={"since": "1h"}).raise_for_status()
    found = by_since.json()["metadata"]["agnes"]["steps"]
    mine = [s for s in found if s["session"] == exported["session"]]
    assert [s["tool"] for s in mine] == [s["tool"] for s in meta["steps"]]
    assert len(found) > len(mine)  # the notebook's own queries, through the REST API


def test_cut_sql_is_audited_as_cut(demo_server: DemoServer) -> None:
    from agnes_mcp.rails.policy import MAX_SQL_CHARS
    from agnes_mcp.rails.refusals import SqlTooLarge

    services = demo_server.live.services
    principal = services.tokens.authenticate(demo_server.analyst_token, None)
    long_sql = "SELECT 1 -- " + "x" * MAX_SQL_CHARS
    services.query.audit(
        principal, "query", long_sql, 0.0, refusal=SqlTooLarge("too long", hint="shorter")
    )
    services.write_behind.flush()
    steps, _ = audit_steps.read_steps(
        services.store,
        audit_steps.Window(principal.user_id, since=dt.datetime.now(dt.UTC) - dt.timedelta(1)),
    )
    last = steps[-1]
    assert last.result == "sql_too_large" and last.sql_cut
    assert last.message == "too long" and last.hint == "shorter"
    assert last.sql is not None and len(last.sql) == MAX_SQL_CHARS


# --- a workspace: the stdio tools in-process, its own log -------------------------------------


@pytest.fixture(scope="module")
def workspace(
    demo_server: DemoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotebookSetup]:
    with pulled_notebook(demo_server, tmp_path_factory.mktemp("session-ws")) as setup:
        yield setup


def test_a_workspace_session_replays_from_its_log(
    demo_server: DemoServer,
    workspace: NotebookSetup,
    kernel: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    got = Session()
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("query:1", "query", {"sql": "SELECT count(*) AS n FROM customers"}),
        ("query:2", "query", {"sql": REFUSED_SQL}),
        ("describe:1", "describe", {"table": "orders", "n": 3}),
        (
            "snapshot_create:1",
            "snapshot_create",
            {
                "table": "web_sessions",
                "select": ["session_id", "device"],
                "where": "event_date >= DATE '2026-10-01'",
                "name": "ws_recent",
            },
        ),
        (
            "query:3",
            "query",
            {"sql": "SELECT device, count(*) AS n FROM ws_recent GROUP BY 1 ORDER BY 1"},
        ),
        ("metric_query:1", "metric_query", METRIC),
        ("query:4", "query", {"sql": ODD_SQL}),
        ("snapshot_drop:1", "snapshot_drop", {"name": "ws_recent"}),
    ]
    for key, tool, arguments in calls:
        answer = workspace.tool(tool, **arguments)
        if answer.is_error:
            got.errors[key] = answer.error()
        elif tool != "snapshot_drop":  # checked apart below
            got.results[key] = answer.structured
    assert set(got.errors) == {"query:2"}

    log = workspace.ws.backend.query_log
    assert log is not None
    lines = [e for e in log.entries() if e["session"] == log.session]
    assert [e["tool"] for e in lines][-8:] == [
        "query",
        "query",
        "describe",
        "snapshot_create",
        "query",
        "metric_query",
        "query",
        "snapshot_drop",  # the log had no drop: the export took the snapshot back
    ]
    refused = lines[-7]
    assert refused["result"] == "remote_table_needs_snapshot" and refused["hint"]

    exported = workspace.tool("session_export").ok()
    path = Path(exported["path"])
    assert path.parent == workspace.folder / "notebooks" and exported["download_url"] is None
    notebook = json.loads(path.read_text())
    assert (exported["steps"], exported["ran"], exported["refused"]) == (8, 7, 1)

    # the CLI, in the workspace, exports the latest session: the same steps
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    monkeypatch.chdir(workspace.folder)
    out = tmp_path / "cli.ipynb"
    assert main(["notebook", "export", "-o", str(out)]) == 0
    from_cli = json.loads(out.read_text())
    assert from_cli["metadata"]["agnes"]["steps"] == notebook["metadata"]["agnes"]["steps"]

    values = execute(notebook, kernel, workspace.folder)  # the snapshot is taken afresh
    check_replay(notebook, got, values)
    dropped = values[f"step_{step_numbers(notebook)['snapshot_drop:1']}"]
    assert (
        dropped["row_count"]
        == values[f"step_{step_numbers(notebook)['snapshot_create:1']}"]["row_count"]
    )  # the notebook dropped what it took, as the session did
    assert "ws_recent" not in [s.name for s in workspace.ws.snapshots()]


def test_nothing_to_export_says_how_to_widen(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    base = demo_server.live.base_url
    token = demo_server.admin_token
    code = main(["notebook", "export", "--server-url", base, "--token", token, "--session", "x"])
    assert code != 0 and not list(tmp_path.glob("*.ipynb"))
    response = httpx.get(
        f"{base}/api/session/export",
        params={"session": "no-such-session"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 404
    assert "since" in response.json()["error"]["hint"]
