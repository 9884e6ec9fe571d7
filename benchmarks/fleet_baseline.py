"""The floor for the fleet benchmark: a bare FastMCP server over DuckDB on the demo's files.

FastMCP's streamable HTTP app under uvicorn, with the transport settings Agnes uses
(``json_response=True``, stateful sessions), and three async tools over one DuckDB that has
a view per table of ``<data-dir>/extracts/*/data/<table>``: ``catalog`` (the tables, built
once), ``schema`` (``DESCRIBE``) and ``query`` (any SQL, rows as JSON). The DuckDB work runs
on a thread (``anyio.to_thread``, a cursor each), so the server is not serialised behind one
query; nothing checks the SQL, the caller or the grants. ``/healthz`` answers on the loop.

    python benchmarks/fleet_baseline.py --data-dir DIR --port 0

prints ``MCP endpoint http://HOST:PORT/mcp`` and ``Press Ctrl-C`` once it listens.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import socket
import sys
from pathlib import Path
from typing import Any

import anyio.to_thread
import duckdb
import uvicorn
from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route


def tables_of(data_dir: Path) -> dict[str, list[str]]:
    """Each table's parquet files under ``extracts/<source>/data/<table>[.parquet]``."""
    found: dict[str, list[str]] = {}
    for source in sorted((data_dir / "extracts").glob("*/data")):
        for entry in sorted(source.iterdir()):
            name = entry.name.removesuffix(".parquet")
            files = [str(entry)] if entry.is_file() else sorted(map(str, entry.rglob("*.parquet")))
            if files and entry.suffix in ("", ".parquet"):
                found.setdefault(name, files)
    return found


def _json(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time, decimal.Decimal)):
        return str(value)
    return value


def build(data_dir: Path) -> FastMCP:
    con = duckdb.connect()
    tables = tables_of(data_dir)
    for name, files in tables.items():
        listing = ", ".join(f"'{f}'" for f in files)
        con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{listing}])')
    listed = [{"id": name, "files": len(files)} for name, files in tables.items()]
    mcp = FastMCP("floor")

    @mcp.tool()
    async def catalog() -> dict[str, Any]:
        """The tables."""
        return {"tables": listed, "total_tables": len(listed)}

    def _describe(table: str) -> list[dict[str, Any]]:
        cursor = con.cursor()
        try:
            rows = cursor.execute(f'DESCRIBE "{table}"').fetchall()
        finally:
            cursor.close()
        return [{"name": r[0], "type": r[1]} for r in rows]

    @mcp.tool()
    async def schema(table: str) -> dict[str, Any]:
        """A table's columns."""
        return {"table": table, "columns": await anyio.to_thread.run_sync(_describe, table)}

    def _run(sql: str) -> dict[str, Any]:
        cursor = con.cursor()
        try:
            result = cursor.execute(sql)
            columns = [d[0] for d in result.description or []]
            rows = [[_json(v) for v in row] for row in result.fetchmany(1000)]
        finally:
            cursor.close()
        return {"columns": columns, "rows": rows, "row_count": len(rows)}

    @mcp.tool()
    async def query(sql: str) -> dict[str, Any]:
        """Run SQL."""
        return await anyio.to_thread.run_sync(_run, sql)

    return mcp


def app(data_dir: Path) -> Starlette:
    mcp_app = build(data_dir).http_app(path="/", json_response=True)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/healthz", healthz), Mount("/mcp", mcp_app)], lifespan=mcp_app.lifespan
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    port = sock.getsockname()[1]
    # uvicorn's defaults (httptools, installed with Agnes), on the event loop Agnes runs
    # on: asyncio's own, even where uvloop is installed
    config = uvicorn.Config(app(args.data_dir), log_level="warning", lifespan="on", loop="asyncio")
    server = uvicorn.Server(config)
    print(f"MCP endpoint http://{args.host}:{port}/mcp", flush=True)
    print("Press Ctrl-C to stop", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
