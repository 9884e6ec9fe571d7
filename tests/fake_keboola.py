"""A local HTTP server speaking the Keboola Storage API, for the connector's tests.

Built from the public Storage API reference (apiary) for the calls a table export makes:

- ``GET /v2/storage/tokens/verify`` (whose answer holds the token itself, ``token``, as
  documented); ``GET /v2/storage/buckets``;
  ``GET /v2/storage/buckets/{id}/tables?include=columns``; ``GET /v2/storage/tables/{id}``
  (``definition`` with ``basetype`` per column for typed tables, ``primaryKey``,
  ``rowsCount``, ``dataSizeBytes``, ``lastChangeDate``; aliases and linked buckets too);
- ``POST /v2/storage/tables/{id}/export-async`` with a JSON body, or a form body where
  ``whereFilters`` must be flattened (``whereFilters[0][column]=...``) — an unflattened one is
  silently ignored, as Keboola does; answers 202 with a job;
- ``GET /v2/storage/jobs/{id}``: ``waiting`` (or ``created``, as the reference's own job
  answers show) → ``processing`` → ``success`` (or ``error``
  with ``error.message``) as it is polled; ``results.file.id`` once done;
- ``GET /v2/storage/files/{id}?federationToken=1``: ``isSliced``, ``fileType`` and a signed
  ``url`` — the file itself, or a manifest ``{"entries": [{"url": ...}]}`` for a sliced
  one (entries in shuffled order, slice names Snowflake-style ``..._0_0_<n>.csv.gz``).

CSV slices are gzipped RFC 4180 without a header; ``fileType=parquet`` gives parquet
slices. Rows carry the import time Keboola keeps per row (``changedSince``/
``changedUntil`` filter on it). Every API call must send a known ``X-StorageApi-Token``;
the signed file URLs must not (a request carrying it is recorded in ``leaked_token``).
Failures are injected with :meth:`FakeKeboola.fail` (429 with ``Retry-After``, 5xx, any
status), :meth:`FakeKeboola.job_not_found` (a new job's polls answer 404 a few times),
:meth:`FakeKeboola.maintenance` (the documented 503 with ``Retry-After`` and a
``{"status": "maintenance", "reason": ...}`` body) and :attr:`FakeKeboola.job_errors`.

``python -m tests.fake_keboola --rows N --slices 10`` serves one generated table on its own
(for the benchmark) and prints ``<url> <token>``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import hmac
import itertools
import json
import random
import re
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from tests.threaded_server import ThreadedServer

TOKEN = "kbc-test-token-0123456789"
BASETYPES = {  # basetype -> (DuckDB storage type, native type, length)
    "STRING": ("VARCHAR", "VARCHAR", "16777216"),
    "INTEGER": ("BIGINT", "NUMBER", "38,0"),
    "NUMERIC": ("DECIMAL(12,2)", "NUMBER", "12,2"),
    "FLOAT": ("DOUBLE", "FLOAT", None),
    "BOOLEAN": ("BOOLEAN", "BOOLEAN", None),
    "DATE": ("DATE", "DATE", None),
    "TIMESTAMP": ("TIMESTAMP", "TIMESTAMP_NTZ", None),
}
# A basetype with the backend's length, e.g. NUMERIC(76,38) (a BigQuery backend's BIGNUMERIC):
# stored as text when wider than DuckDB's DECIMAL holds, so every digit is exported.
_SIZED = re.compile(r"^(NUMERIC)\((\d+),(\d+)\)$")


def basetype_spec(basetype: str) -> tuple[str, str, str, str | None]:
    """(basetype as the API names it, DuckDB storage type, native type, length)."""
    sized = _SIZED.match(basetype)
    if sized:
        base, precision, scale = sized[1], int(sized[2]), int(sized[3])
        storage = f"DECIMAL({precision},{scale})" if precision <= 38 else "VARCHAR"
        return base, storage, "NUMERIC", f"{precision},{scale}"
    return (basetype, *BASETYPES[basetype])


_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def iso(moment: datetime) -> str:
    """Keboola's timestamp format, e.g. 2017-02-13T12:56:57+0100."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class FakeTable:
    id: str
    bucket: str
    name: str
    storage: str  # the DuckDB table holding the rows (an alias shares its source's)
    columns: dict[str, str]  # name -> basetype
    typed: bool
    primary_key: list[str]
    created: datetime
    last_change: datetime
    alias_of: str | None = None
    source_project: dict[str, Any] | None = None
    version: int = 0  # bumped by every change (the export cache's key)
    description: str = ""  # the KBC.description metadata


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    times: int
    retry_after: str | None
    message: str
    raw_body: str | None = None  # sent as is (a body cut off, a proxy's page)
    headers: dict[str, str] | None = None  # e.g. a redirect's Location


@dataclass
class Token:
    buckets: set[str] | None = None  # None: every bucket
    expired: bool = False


@dataclass
class FakeKeboola:
    root: Path
    base_url: str = ""
    slices: int = 3  # 0: a single unsliced file
    polls_to_finish: int = 2  # job polls answered waiting/processing before success
    first_status: str = "waiting"  # a new job's; "created" as the reference also shows
    accept_parquet: bool = True
    shuffle_manifest: bool = True
    # The file detail of a sliced export says isSliced: true; False: false, as the API
    # reference's own example of a ``.csvmanifest`` file detail does.
    says_sliced: bool = True
    # A manifest that lists its first slice again (at the end), as a hostile or broken
    # manifest may: the same object, named twice.
    repeat_first_entry: bool = False
    gzip_encoded: bool = False  # serve blobs with Content-Encoding: gzip (as S3 can)
    # compress every blob for the wire when the client accepts gzip (as a CDN or a proxy
    # may, on top of a .gz object): Content-Encoding is the transport's, not the object's
    gzip_in_transit: bool = False
    cut_slice: int | None = None  # this slice's object stored cut in half (a broken upload)
    offset: timedelta = timedelta(0)
    tokens: dict[str, Token] = field(default_factory=lambda: {TOKEN: Token()})
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, FakeTable] = field(default_factory=dict)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[int, dict[str, Any]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    job_errors: list[str | None] = field(default_factory=list)  # next jobs' errors (None: none)
    requests: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)  # parsed export parameters
    leaked_token: list[str] = field(default_factory=list)
    cache: dict[str, int] = field(default_factory=dict)  # export parameters -> file id
    lock: threading.RLock = field(default_factory=threading.RLock)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def __post_init__(self) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        self._ids = itertools.count(1001)

    # --- time ----------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)

    # --- data ----------------------------------------------------------------------------

    def add_bucket(self, bucket_id: str, description: str = "") -> None:
        stage, name = bucket_id.split(".", 1)
        self.buckets[bucket_id] = {
            "uri": f"{self.base_url}/v2/storage/buckets/{bucket_id}",
            "id": bucket_id,
            "name": name,
            "displayName": name.removeprefix("c-"),
            "stage": stage,
            "description": description,
            "tables": f"{self.base_url}/v2/storage/buckets/{bucket_id}/tables",
            "backend": "snowflake",
            "isLinkedBucket": False,
            "isReadonly": False,
        }

    def create_table(
        self,
        bucket: str,
        name: str,
        columns: dict[str, str],
        rows: list[tuple[Any, ...]] | None = None,
        *,
        primary_key: tuple[str, ...] = (),
        typed: bool = True,
        sql: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """A table of ``columns`` (name -> basetype), from ``rows`` or a DuckDB ``sql``."""
        if bucket not in self.buckets:
            self.add_bucket(bucket)
        table_id = f"{bucket}.{name}"
        storage = f"t{next(self._ids)}"
        with self.lock:
            defs = ", ".join(f"{q(c)} {self._storage_type(b, typed)}" for c, b in columns.items())
            self.con.execute(f"CREATE TABLE {storage} ({defs}, _timestamp TIMESTAMPTZ)")
            moment = at or self.now()
            self.tables[table_id] = FakeTable(
                table_id, bucket, name, storage, dict(columns), typed, list(primary_key),
                moment, moment,
            )  # fmt: skip
            if sql is not None:
                self.con.execute(f"INSERT INTO {storage} SELECT *, ? FROM ({sql})", [moment])
            elif rows:
                self.upsert(table_id, rows, at=moment)
        return table_id

    def _storage_type(self, basetype: str, typed: bool) -> str:
        return basetype_spec(basetype)[1] if typed else "VARCHAR"

    def upsert(
        self, table_id: str, rows: list[tuple[Any, ...]], at: datetime | None = None
    ) -> None:
        """An incremental load: rows replace those with the same primary key; all get a new
        import time."""
        table = self._storage_of(table_id)
        moment = at or self.now()
        names = list(table.columns)
        with self.lock:
            if table.primary_key:
                match = " AND ".join(f"t.{q(k)} = n.{q(k)}" for k in table.primary_key)
                self.con.execute("CREATE OR REPLACE TEMP TABLE _new AS SELECT * FROM "
                                 f"{table.storage} LIMIT 0")  # fmt: skip
                self.con.execute("ALTER TABLE _new DROP COLUMN _timestamp")
                self.con.executemany(
                    f"INSERT INTO _new VALUES ({', '.join('?' * len(names))})", rows
                )
                self.con.execute(f"DELETE FROM {table.storage} t USING _new n WHERE {match}")
                self.con.execute(f"INSERT INTO {table.storage} SELECT *, ? FROM _new", [moment])
            else:
                marks = ", ".join("?" * (len(names) + 1))
                self.con.executemany(
                    f"INSERT INTO {table.storage} VALUES ({marks})", [(*r, moment) for r in rows]
                )
            table.last_change = moment
            table.version += 1

    def replace_rows(self, table_id: str, rows: list[tuple[Any, ...]]) -> None:
        """A full load: the table holds exactly ``rows``, all imported now."""
        table = self._storage_of(table_id)
        with self.lock:
            self.con.execute(f"DELETE FROM {table.storage}")
        self.upsert(table_id, rows)

    def add_column(self, table_id: str, name: str, basetype: str = "STRING") -> None:
        table = self._storage_of(table_id)
        with self.lock:
            kind = self._storage_type(basetype, table.typed)
            self.con.execute(f"ALTER TABLE {table.storage} ADD COLUMN {q(name)} {kind}")
            # keep _timestamp last, as the loaders expect
            self.con.execute(
                f"CREATE OR REPLACE TABLE {table.storage} AS SELECT * EXCLUDE (_timestamp), "
                f"_timestamp FROM {table.storage}"
            )
            table.columns[name] = basetype
            table.last_change = self.now()
            table.version += 1

    def drop_column(self, table_id: str, name: str) -> None:
        table = self._storage_of(table_id)
        with self.lock:
            self.con.execute(f"ALTER TABLE {table.storage} DROP COLUMN {q(name)}")
            del table.columns[name]
            table.last_change = self.now()
            table.version += 1

    def create_alias(self, bucket: str, name: str, source_id: str) -> str:
        if bucket not in self.buckets:
            self.add_bucket(bucket)
        source = self.tables[source_id]
        alias_id = f"{bucket}.{name}"
        self.tables[alias_id] = FakeTable(
            alias_id, bucket, name, source.storage, source.columns, source.typed,
            source.primary_key, self.now(), source.last_change, alias_of=source_id,
        )  # fmt: skip
        return alias_id

    def link_bucket(self, bucket_id: str, source_bucket: str, project: str = "Shared data") -> None:
        """A linked bucket: the source bucket's tables, as aliases from another project."""
        self.add_bucket(bucket_id)
        self.buckets[bucket_id].update(
            isLinkedBucket=True,
            isReadonly=True,
            sourceBucket={"id": source_bucket, "project": {"id": 578, "name": project}},
        )
        for table in [t for t in self.tables.values() if t.bucket == source_bucket]:
            alias = self.create_alias(bucket_id, table.name, table.id)
            self.tables[alias].source_project = {"id": 578, "name": project}

    def _storage_of(self, table_id: str) -> FakeTable:
        table = self.tables[table_id]
        return self.tables[table.alias_of] if table.alias_of else table

    def fail(
        self,
        path: str,
        status: int,
        *,
        method: str = "*",
        times: int = 1,
        retry_after: str | None = None,
        message: str = "Injected failure",
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` requests whose path matches the regex ``path`` get ``status``
        (with ``raw_body`` as is, when given, and ``headers``)."""
        self.failures.append(
            Failure(
                method, re.compile(path), status, times, retry_after, message, raw_body, headers
            )
        )

    def job_not_found(self, times: int) -> None:
        """The next ``times`` polls of any job answer 404 as for an unknown job: a job
        just created that the stack's jobs endpoint does not show yet."""
        self.fail(r"/v2/storage/jobs/\d+$", 404, times=times, message="Job not found")

    def maintenance(self, path: str, retry_after: str, *, times: int = 1) -> None:
        """The documented maintenance answer: 503, ``Retry-After`` and a body that has no
        ``error`` but ``status``, ``reason`` and ``estimatedEndTime``."""
        end = self.now() + timedelta(seconds=int(retry_after) if retry_after.isdigit() else 0)
        body = {
            "status": "maintenance",
            "reason": "The project is being migrated",
            "estimatedEndTime": iso(end),
        }
        self.fail(path, 503, times=times, retry_after=retry_after, raw_body=json.dumps(body))

    def calls(self, path: str, method: str = "*") -> list[dict[str, Any]]:
        pattern = re.compile(path)
        return [
            r for r in self.requests
            if pattern.search(r["path"]) and method in ("*", r["method"])
        ]  # fmt: skip

    # --- descriptions --------------------------------------------------------------------

    def describe(
        self, table: FakeTable, columns: bool = True, metadata: bool = True
    ) -> dict[str, Any]:
        storage = self._storage_of(table.id)
        with self.lock:
            rows = self.con.execute(f"SELECT count(*) FROM {storage.storage}").fetchone()
        count = int(rows[0]) if rows else 0
        body: dict[str, Any] = {
            "uri": f"{self.base_url}/v2/storage/tables/{table.id}",
            "id": table.id,
            "name": table.name,
            "displayName": table.name,
            "transactional": False,
            "primaryKey": storage.primary_key,
            "created": iso(table.created),
            "lastImportDate": iso(storage.last_change),
            "lastChangeDate": iso(storage.last_change),
            "rowsCount": count,
            "dataSizeBytes": count * 64,
            "isAlias": table.alias_of is not None,
            "isAliasable": True,
            "isTyped": storage.typed and table.alias_of is None,
            "tableType": "table",
            "bucket": {
                "id": table.bucket,
                "uri": f"{self.base_url}/v2/storage/buckets/{table.bucket}",
            },
        }
        if columns:
            body["columns"] = list(storage.columns)
        if metadata:
            described = [{"key": "KBC.description", "value": table.description}]
            body["metadata"] = described if table.description else []
        definition = self._definition(storage) if storage.typed else None
        if table.alias_of:
            body["sourceTable"] = {
                "id": table.alias_of,
                "uri": f"{self.base_url}/v2/storage/tables/{table.alias_of}",
                "isAlias": False,
                "project": table.source_project or {"id": 1, "name": "This project"},
            }
            if definition:
                body["sourceTable"]["definition"] = definition
            body["aliasColumnsAutoSync"] = True
        elif definition:
            body["definition"] = definition
        return body

    def _definition(self, table: FakeTable) -> dict[str, Any]:
        columns = []
        for name, sized in table.columns.items():
            base, _, native, length = basetype_spec(sized)
            spec: dict[str, Any] = {"type": native, "nullable": name not in table.primary_key}
            if length:
                spec["length"] = length
            columns.append(
                {"name": name, "definition": spec, "basetype": base, "canBeFiltered": True}
            )
        return {"primaryKeysNames": table.primary_key, "columns": columns}

    # --- exports -------------------------------------------------------------------------

    def export(self, table: FakeTable, params: dict[str, Any]) -> dict[str, Any]:
        """Run an export now; the job reveals it over the next polls."""
        storage = self._storage_of(table.id)
        job_id = next(self._ids)
        created = self.now()
        job: dict[str, Any] = {
            "id": job_id,
            "status": self.first_status,
            "url": f"{self.base_url}/v2/storage/jobs/{job_id}",
            "tableId": table.id,
            "operationName": "tableExport",
            "operationParams": {"export": params, "queue": "main_fast"},
            "createdTime": iso(created),
            "startTime": None,
            "endTime": None,
            "runId": None,
            "results": None,
            "creatorToken": {"id": "27978", "description": "fake"},
            "metrics": {"inCompressed": False, "inBytes": 0, "outCompressed": True, "outBytes": 0},
            "_polls": 0,
        }
        self.exports.append(params)
        # Keboola caches exports: the same parameters on unchanged data give the same file.
        key = json.dumps([table.id, params, storage.version, self.slices], sort_keys=True)
        planned = self.job_errors.pop(0) if self.job_errors else None
        if planned is not None:
            job["_outcome"] = ("error", planned)
        elif key in self.cache and self.cache[key] in self.files:
            job["_outcome"] = ("success", self.cache[key])
        else:
            try:
                job["_outcome"] = ("success", self._write_file(table, storage, params))
                self.cache[key] = job["_outcome"][1]
            except (duckdb.Error, ValueError) as exc:
                job["_outcome"] = ("error", str(exc).splitlines()[0])
        self.jobs[job_id] = job
        return self._public(job)

    def _write_file(self, table: FakeTable, storage: FakeTable, params: dict[str, Any]) -> int:
        columns = params["columns"] or list(storage.columns)
        for name in columns:
            if name not in storage.columns:
                raise ValueError(f"Column {name} not found in table {table.id}")
        where = ["true"]
        args: list[Any] = []
        for since, op in (("changedSince", ">="), ("changedUntil", "<")):
            if params.get(since):
                where.append(f"_timestamp {op} ?")
                args.append(_moment(params[since]))
        for spec in params["whereFilters"]:
            column, values = spec["column"], [str(v) for v in spec.get("values") or []]
            if column not in storage.columns:
                raise ValueError(f"Cannot filter by column {column}: not found in table {table.id}")
            operator = spec.get("operator", "eq")
            target = (
                f"TRY_CAST({q(column)} AS DOUBLE)"
                if spec.get("dataType")
                else f"{q(column)}::VARCHAR"
            )
            cast = (lambda v: float(v)) if spec.get("dataType") else str
            if operator in ("eq", "ne"):
                marks = ", ".join("?" * len(values))
                where.append(f"{target} {'NOT ' if operator == 'ne' else ''}IN ({marks})")
                args.extend(cast(v) for v in values)
            else:
                where.append(f"{target} {_OPS[operator]} ?")
                args.append(cast(values[0]))
        select = ", ".join(q(c) for c in columns)
        relation = f"SELECT {select} FROM {storage.storage} WHERE {' AND '.join(where)} ORDER BY _timestamp, rowid"
        file_id = next(self._ids)
        folder = self.root / str(file_id)
        folder.mkdir(parents=True)
        parquet = params["fileType"] == "parquet"
        packed = params.get("gzip", True)  # gzip: false gives plain CSV slices
        suffix = ".snappy.parquet" if parquet else ".csv.gz" if packed else ".csv"
        options = (
            "FORMAT parquet"
            if parquet
            else f"FORMAT csv, HEADER false, COMPRESSION {'gzip' if packed else 'none'}"
        )
        with self.lock:
            staged = f"_export_{file_id}"
            self.con.execute(f"CREATE TEMP TABLE {staged} AS {relation}", args)
            count = self.con.execute(f"SELECT count(*) FROM {staged}").fetchone()
            rows = int(count[0]) if count else 0
            pieces = max(1, self.slices)
            names = []
            for index in range(pieces):
                name = (
                    f"{table.id}.csv.gz_0_0_{index}{suffix}"
                    if self.slices
                    else f"{file_id}.{table.name}{suffix}"
                )
                low, high = rows * index // pieces, rows * (index + 1) // pieces
                self.con.execute(
                    f"COPY (SELECT * FROM {staged} LIMIT {high - low} OFFSET {low}) "
                    f"TO '{folder / name}' ({options})"
                )
                names.append(name)
                if index == self.cut_slice:
                    stored = (folder / name).read_bytes()
                    (folder / name).write_bytes(stored[: len(stored) // 2])
            self.con.execute(f"DROP TABLE {staged}")
        info: dict[str, Any] = {
            "id": file_id,
            "created": iso(self.now()),
            "isPublic": False,
            "isSliced": bool(self.slices) and self.says_sliced,
            "isEncrypted": True,
            "fileType": "parquet" if parquet else "csv",
            "sizeBytes": sum((folder / n).stat().st_size for n in names),
            "tags": [f"table-export-{table.id}"],
            "maxAgeDays": 15,
            "provider": "aws",
            "region": "us-east-1",
            "_folder": folder,
        }
        if self.slices:
            manifest_name = f"{file_id}.csvmanifest"
            entries = [{"url": self.blob_url(file_id, n)} for n in names]
            if self.shuffle_manifest:
                random.Random(file_id).shuffle(entries)
            if self.repeat_first_entry and entries:
                entries.append(dict(entries[0]))
            (folder / manifest_name).write_text(json.dumps({"entries": entries}))
            info["name"] = manifest_name
        else:
            info["name"] = names[0]
        self.files[file_id] = info
        return file_id

    def blob_url(self, file_id: int, name: str) -> str:
        signature = hmac.new(self.secret, f"{file_id}/{name}".encode(), hashlib.sha256).hexdigest()
        return (
            f"{self.base_url}/kbc-sapi-files/exp-15/{file_id}/{name}"
            f"?X-Amz-Expires=3600&X-Amz-Signature={signature}"
        )

    def poll(self, job_id: int) -> dict[str, Any]:
        job = self.jobs[job_id]
        if job["status"] in ("created", "waiting", "processing"):
            job["_polls"] += 1
            if job["_polls"] >= self.polls_to_finish:
                outcome, value = job["_outcome"]
                job["status"] = outcome
                job["endTime"] = iso(self.now())
                if outcome == "success":
                    job["results"] = {"file": {"id": value}, "cacheHit": False}
                else:
                    job["error"] = {
                        "code": "storage.tableExport",
                        "message": value,
                        "exceptionId": "exception-1",
                    }
            else:
                job["status"] = "processing"
                job["startTime"] = iso(self.now())
        return self._public(job)

    def _public(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def file_info(self, file_id: int, name: str) -> dict[str, Any]:
        info = {k: v for k, v in self.files[file_id].items() if not k.startswith("_")}
        info["url"] = self.blob_url(file_id, name)
        info["credentials"] = {
            "AccessKeyId": "ASIAFAKE",
            "SecretAccessKey": "fake",
            "SessionToken": "fake",
        }
        info["s3Path"] = {"bucket": "kbc-sapi-files", "key": f"exp-15/{file_id}/{name}"}
        return info


def _moment(value: Any) -> datetime:
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return datetime.fromtimestamp(int(text), UTC)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_form(items: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP-style flattened form keys (``whereFilters[0][values][]=x``) as nested values."""
    root: dict[str, Any] = {}
    for key, value in items:
        head, rest = key.split("[", 1)[0], re.findall(r"\[([^\]]*)\]", key)
        node: Any = root
        path = [head, *rest]
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            nxt: Any = [] if (not last and path[depth + 1] == "") else {}
            if part == "":
                if last:
                    node.append(value)
                else:
                    node.append(nxt)
                    node = nxt
            elif last:
                node[part] = value
            else:
                node = node.setdefault(part, nxt)
    return root


def export_params(body: dict[str, Any]) -> dict[str, Any]:
    """The export options as Keboola reads them; filters given in a shape it does not read
    (e.g. an unflattened form field) are ignored, silently."""
    columns = body.get("columns") or []
    if isinstance(columns, str):
        columns = [c for c in columns.split(",") if c]
    filters = body.get("whereFilters") or []
    if isinstance(filters, dict):  # a form's whereFilters[0][...] keys
        filters = [filters[k] for k in sorted(filters, key=int)]
    if not isinstance(filters, list) or not all(
        isinstance(f, dict) and "column" in f for f in filters
    ):
        filters = []
    for spec in filters:
        values = spec.get("values") or []
        if isinstance(values, dict):
            spec["values"] = [values[k] for k in sorted(values, key=int)]
    return {
        "columns": list(columns),
        "whereFilters": filters,
        "changedSince": body.get("changedSince"),
        "changedUntil": body.get("changedUntil"),
        "fileType": body.get("fileType") or "csv",
        "gzip": body.get("gzip") in (True, "1", "true", 1),
        "format": body.get("format") or "rfc",
    }


def create_app(fake: FakeKeboola) -> Starlette:
    def error(
        status: int, message: str, code: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        return JSONResponse(
            {"error": message, "code": code, "status": "error", "exceptionId": "fake-1"},
            status_code=status,
            headers=headers,
        )

    def injected(request: Request) -> Response | None:
        with fake.lock:
            for failure in fake.failures:
                if (
                    failure.times > 0
                    and failure.path.search(request.url.path)
                    and failure.method in ("*", request.method)
                ):
                    failure.times -= 1
                    headers = dict(failure.headers or {})
                    if failure.retry_after:
                        headers["Retry-After"] = failure.retry_after
                    if failure.raw_body is not None:
                        return Response(
                            failure.raw_body,
                            failure.status,
                            headers=headers,
                            media_type="application/json",
                        )
                    return error(failure.status, failure.message, "fake.injected", headers)
        return None

    async def api(request: Request) -> Response:
        body: dict[str, Any] = {}
        if request.method == "POST":
            kind = request.headers.get("content-type", "")
            if kind.startswith("application/json"):
                body = json.loads(await request.body() or b"{}")
            else:
                form = await request.form()
                body = parse_form([(k, str(v)) for k, v in form.multi_items()])
        token = request.headers.get("x-storageapi-token")
        fake.requests.append({
            "method": request.method, "path": request.url.path, "query": dict(request.query_params),
            "body": body, "has_token": token is not None,
        })  # fmt: skip
        failure = injected(request)
        if failure is not None:
            return failure
        grant = fake.tokens.get(token or "")
        if grant is None or grant.expired:
            return error(401, "Invalid access token", "storage.tokenInvalid")
        return route(request, grant, body)

    def allowed(grant: Token, bucket: str) -> bool:
        return grant.buckets is None or bucket in grant.buckets

    def route(request: Request, grant: Token, body: dict[str, Any]) -> Response:
        path = request.url.path.removeprefix("/v2/storage")
        if path == "/tokens/verify":
            return JSONResponse({
                "id": "44", "token": request.headers["x-storageapi-token"], "description": "fake token", "isMasterToken": False,
                "canManageBuckets": grant.buckets is None, "expires": None, "isExpired": False,
                "isDisabled": False, "bucketPermissions": {b: "read" for b in (grant.buckets or fake.buckets)},
                "owner": {"id": "58", "name": "Fake project", "defaultBackend": "snowflake", "features": []},
            })  # fmt: skip
        if path == "/buckets":
            return JSONResponse([b for b in fake.buckets.values() if allowed(grant, b["id"])])
        match = re.fullmatch(r"/buckets/([^/]+)/tables", path)
        if match:
            bucket = match[1]
            if bucket not in fake.buckets:
                return error(404, f"Bucket {bucket} not found", "storage.buckets.notFound")
            if not allowed(grant, bucket):
                return error(403, "You don't have access to the resource.", "accessDenied")
            # include replaces the documented default, "metadata"
            include = request.query_params.get("include", "metadata").split(",")
            tables = [
                fake.describe(t, "columns" in include, "metadata" in include)
                for t in fake.tables.values()
                if t.bucket == bucket
            ]
            return JSONResponse(tables)
        match = re.fullmatch(r"/tables/([^/]+)(/export-async)?", path)
        if match:
            table = fake.tables.get(match[1])
            if table is None:
                return error(
                    404, f'The table "{match[1]}" was not found.', "storage.tables.notFound"
                )
            if not allowed(grant, table.bucket):
                return error(403, "You don't have access to the resource.", "accessDenied")
            if not match[2]:
                return JSONResponse(fake.describe(table))
            if request.method != "POST":
                return error(405, "Method not allowed", "methodNotAllowed")
            params = export_params(body)
            if params["fileType"] == "parquet" and not fake.accept_parquet:
                return error(
                    400, "Parquet export is not enabled for this project.", "storage.validation"
                )
            return JSONResponse(fake.export(table, params), status_code=202)
        match = re.fullmatch(r"/jobs/(\d+)", path)
        if match:
            if int(match[1]) not in fake.jobs:
                return error(404, "Job not found", "storage.jobs.notFound")
            return JSONResponse(fake.poll(int(match[1])))
        match = re.fullmatch(r"/files/(\d+)", path)
        if match:
            file_id = int(match[1])
            if file_id not in fake.files:
                return error(404, "File not found", "storage.files.notFound")
            return JSONResponse(fake.file_info(file_id, fake.files[file_id]["name"]))
        return error(404, f"Unknown endpoint {path}", "notFound")

    async def blob(request: Request) -> Response:
        if request.headers.get("x-storageapi-token"):
            fake.leaked_token.append(request.url.path)
        fake.requests.append({
            "method": request.method, "path": request.url.path, "query": {}, "body": {},
            "has_token": "x-storageapi-token" in request.headers,
        })  # fmt: skip
        failure = injected(request)
        if failure is not None:
            return failure
        file_id, name = int(request.path_params["file_id"]), request.path_params["name"]
        expected = hmac.new(fake.secret, f"{file_id}/{name}".encode(), hashlib.sha256).hexdigest()
        given = request.query_params.get("X-Amz-Signature", "")
        info = fake.files.get(file_id)
        if info is None or not hmac.compare_digest(expected, given):
            return Response(
                "<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml"
            )
        path = info["_folder"] / name
        if not path.is_file():
            return Response(
                "<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml"
            )
        if fake.gzip_in_transit and "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                gzip.compress(path.read_bytes()),
                headers={"Content-Encoding": "gzip"},
                media_type="application/octet-stream",
            )
        headers = (
            {"Content-Encoding": "gzip"} if fake.gzip_encoded and name.endswith(".gz") else None
        )
        return FileResponse(path, headers=headers, media_type="application/octet-stream")

    return Starlette(
        routes=[
            Route("/v2/storage/{rest:path}", api, methods=["GET", "POST"]),
            Route("/kbc-sapi-files/exp-15/{file_id}/{name}", blob, methods=["GET"]),
        ]
    )


class FakeKeboolaServer(ThreadedServer):
    """The fake on 127.0.0.1 and a free port, in a thread; its files in a temporary folder."""

    def __init__(self, **options: Any) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="fake-keboola-"))
        self.fake = FakeKeboola(self._tmp, **options)
        super().__init__(create_app(self.fake))
        self.fake.base_url = self.url

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.fake.con.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


def main() -> None:  # pragma: no cover - run by the benchmark in its own process
    parser = argparse.ArgumentParser(description="Serve a fake Keboola stack with one big table.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--slices", type=int, default=10)
    args = parser.parse_args()
    import uvicorn

    from agnes_mcp.serve import bind

    root = Path(tempfile.mkdtemp(prefix="fake-keboola-bench-"))
    fake = FakeKeboola(root, slices=args.slices, polls_to_finish=1, shuffle_manifest=True)
    sock = bind("127.0.0.1", 0)
    fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fake.create_table(
        "in.c-bench", "events", BENCH_COLUMNS, sql=bench_sql(args.rows), primary_key=("id",)
    )
    print(fake.base_url, TOKEN, flush=True)
    try:
        uvicorn.Server(uvicorn.Config(create_app(fake), log_level="warning")).run(sockets=[sock])
    finally:
        shutil.rmtree(root, ignore_errors=True)


BENCH_COLUMNS = {
    "id": "INTEGER",
    "created_at": "TIMESTAMP",
    "customer": "STRING",
    "amount": "FLOAT",
    "note": "STRING",
}


def bench_sql(rows: int) -> str:
    """~100 bytes of CSV a row, barely compressible (so the wire carries about that much)."""
    return (
        "SELECT range AS id, TIMESTAMP '2026-01-01' + INTERVAL (range % 86400) SECOND AS created_at, "
        "md5(range::VARCHAR) AS customer, (hash(range) % 100000) / 100.0 AS amount, "
        f"md5((range * 7)::VARCHAR) || md5((range * 13)::VARCHAR) AS note FROM range({rows})"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
