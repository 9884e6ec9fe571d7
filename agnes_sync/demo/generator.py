"""Generate the demo company's source data: files for the file connector, a warehouse DB.

Layout under the target folder::

    files/customers.csv  products.csv  orders.parquet  order_items.parquet
          subscriptions.csv  support_tickets.ndjson
    warehouse.duckdb      (table web_sessions, >= 20M rows at scale 1)
    demo.json             (seed, scale, row counts and content hashes; written last)

The same seed and scale always give the same bytes in ``files/`` and the same rows in
the warehouse. Generation runs into a temporary folder that is renamed into place, so
an interrupted run never leaves a half-built demo behind.

The company behaves like one: customers sign up in id order, a little faster each month,
and orders, tickets and web sessions come only from customers who had signed up by then.
Signed-in web sessions follow each customer's own activity pattern (when they take up the
web app, whether they stop or are seasonal, how engaged they are), so monthly active
users grow and vary, well below the customer count.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

# Raised when the same seed and scale give different data: a demo made by an older
# version is generated again.
GENERATOR_VERSION = 2
MANIFEST = "demo.json"
WAREHOUSE = "warehouse.duckdb"
FILES = "files"

# table -> (file name, COPY options)
FILE_OUTPUTS: dict[str, tuple[str, str]] = {
    "customers": ("customers.csv", "FORMAT csv, HEADER"),
    "products": ("products.csv", "FORMAT csv, HEADER"),
    "orders": ("orders.parquet", "FORMAT parquet, COMPRESSION zstd"),
    "order_items": ("order_items.parquet", "FORMAT parquet, COMPRESSION zstd"),
    "subscriptions": ("subscriptions.csv", "FORMAT csv, HEADER"),
    "support_tickets": ("support_tickets.ndjson", "FORMAT json"),
}


@dataclass(frozen=True)
class DemoSizes:
    customers: int
    products: int
    orders: int
    tickets: int
    sessions: int

    @classmethod
    def for_scale(cls, scale: float) -> DemoSizes:
        if not 0 < scale <= 100:
            raise ValueError(f"scale must be in (0, 100], got {scale}")

        def at(full: int, least: int) -> int:
            return max(least, round(full * scale))

        return cls(
            customers=at(10_000, 20),
            products=at(200, 10),
            orders=at(1_000_000, 50),
            tickets=at(50_000, 20),
            sessions=at(20_000_000, 1_000),
        )


@dataclass(frozen=True)
class DemoData:
    root: Path
    manifest: dict[str, Any]

    @property
    def files_dir(self) -> Path:
        return self.root / FILES

    @property
    def warehouse_path(self) -> Path:
        return self.root / WAREHOUSE


def _sql(name: str, **params: int) -> str:
    text = resources.files("agnes_sync.demo").joinpath(name).read_text(encoding="utf-8")
    return text.format(**params)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def _table_hash(con: duckdb.DuckDBPyConnection, table: str) -> str:
    row = con.execute(f"SELECT count(*), bit_xor(hash(t)) FROM {table} t").fetchone()
    assert row is not None
    return f"{row[0]}:{row[1]}"


def _config(threads: int) -> dict[str, Any]:
    return {"threads": threads, "preserve_insertion_order": True}


def _write_files(out: Path, sizes: DemoSizes, seed: int, threads: int) -> dict[str, Any]:
    files: dict[str, Any] = {}
    con = duckdb.connect(config=_config(threads))
    con.execute("SET enable_progress_bar = false")
    try:
        con.execute(
            _sql(
                "company.sql",
                seed=seed,
                customers=sizes.customers,
                products=sizes.products,
                orders=sizes.orders,
                tickets=sizes.tickets,
            )
        )
        for table, (file_name, options) in FILE_OUTPUTS.items():
            target = out / file_name
            con.execute(f"COPY (SELECT * FROM {table}) TO '{target}' ({options})")
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            files[table] = {
                "file": file_name,
                "rows": int(row[0]) if row else 0,
                "bytes": target.stat().st_size,
                "sha256": _sha256(target),
            }
    finally:
        con.close()
    return files


def _write_warehouse(path: Path, sizes: DemoSizes, seed: int, threads: int) -> dict[str, Any]:
    con = duckdb.connect(str(path), config=_config(threads))
    con.execute("SET enable_progress_bar = false")
    try:
        con.execute(
            _sql("web_sessions.sql", seed=seed, sessions=sizes.sessions, customers=sizes.customers)
        )
        content = _table_hash(con, "web_sessions")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"web_sessions": {"rows": sizes.sessions, "content_hash": content}}


def generate(
    root: Path, *, scale: float = 1.0, seed: int = 42, threads: int | None = None
) -> DemoData:
    """Build the demo data at ``root`` (replacing what is there)."""
    sizes = DemoSizes.for_scale(scale)
    workers = threads or os.cpu_count() or 2
    started = time.perf_counter()
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / FILES).mkdir(parents=True)
    try:
        files = _write_files(staging / FILES, sizes, seed, workers)
        warehouse = _write_warehouse(staging / WAREHOUSE, sizes, seed, workers)
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "scale": scale,
            "sizes": sizes.__dict__,
            "files": files,
            "warehouse": warehouse,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if root.exists():
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            root.rename(old)
            staging.rename(root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DemoData(root=root, manifest=manifest)


def ensure(root: Path, *, scale: float = 1.0, seed: int = 42) -> tuple[DemoData, bool]:
    """Reuse the demo data at ``root`` if it was made with this seed and scale.

    Returns the data and whether it was generated now.
    """
    manifest = read_manifest(root)
    if (
        manifest is not None
        and manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("seed") == seed
        and manifest.get("scale") == scale
        and all((root / FILES / spec["file"]).is_file() for spec in manifest["files"].values())
        and (root / WAREHOUSE).is_file()
    ):
        return DemoData(root=root, manifest=manifest), False
    return generate(root, scale=scale, seed=seed), True
