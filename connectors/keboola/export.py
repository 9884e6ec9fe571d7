"""One table export: async export job → poll → file detail → slices on disk.

``POST /v2/storage/tables/{id}/export-async`` (JSON body: ``columns``, ``whereFilters``,
``changedSince``/``changedUntil``, ``fileType``, ``gzip``) answers with a job; ``GET
/v2/storage/jobs/{id}`` is polled with a growing wait until ``success`` or ``error``
(``created``, ``waiting``, ``processing`` and ``terminating`` mean not yet; ``cancelled``
and ``terminated``, a stopped job, are retried with a new export) or the timeout; a poll
answered 404 (a job just created, not yet shown) is asked again with backoff, then ends
in :class:`JobNotFound`. The job's
``results.file.id`` names a file; ``GET /v2/storage/files/{id}?federationToken=1`` gives
its signed ``url`` and ``isSliced``. A plain file is downloaded from ``url``; a sliced one's
``url`` is a manifest (``{"entries": [{"url": ...}]}``) whose slices are all downloaded,
``parallel`` at a time, each streamed to its own file. Slices are ordered by the index in
their names (the manifest's order is not guaranteed) and never concatenated: DuckDB reads
them as a list of files (:func:`reader_sql`). CSV slices have no header; their columns are
the ones asked for, in that order.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from agnes_sync.connector import Column
from agnes_sync.errors import SourceTableNotFound, TerminalSyncError, TransientSyncError
from agnes_sync.sql_text import quote_ident, quote_literal
from connectors.keboola.answers import an_object
from connectors.keboola.blob_urls import resolve
from connectors.keboola.client import MAX_BACKOFF, StorageClient

logger = logging.getLogger("agnes.sync")

MAX_POLL = 15.0
# Job states still going: the polling guide names waiting and processing; the Storage API
# reference's own job answers also show "created", and Keboola's job schema adds a stopped
# job's "terminating", then "terminated" or "cancelled".
RUNNING = ("created", "waiting", "processing", "terminating")
STOPPED = ("cancelled", "terminated")
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_DIGITS = re.compile(r"(\d+)")
# The longest CSV row read (DuckDB's default is 2,000,000 bytes; a Keboola text value may
# hold 16 MiB), and the reader's buffer, which must be larger (its default, 16 rows, would
# be half a gigabyte for each gzip slice read at once).
MAX_ROW_BYTES = 32 << 20
JOB = ("id", "status")  # what a job answer (the export's, each poll's) must hold


class JobNotFound(TransientSyncError):
    """The export's job still answered 404 after the client's attempts with backoff."""

    code = "source_job_not_found"


@dataclass(frozen=True)
class ExportParams:
    columns: tuple[str, ...]
    where_filters: tuple[dict[str, Any], ...] = ()
    changed_since: datetime | None = None
    changed_until: datetime | None = None
    file_type: str = "csv"  # csv | parquet
    gzip: bool = True  # False only to step around a damaged export Keboola keeps cached

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "columns": ",".join(self.columns),
            "format": "rfc",
            "gzip": self.gzip,
            "fileType": self.file_type,
        }
        if self.where_filters:
            body["whereFilters"] = [dict(f) for f in self.where_filters]
        if self.changed_since is not None:
            body["changedSince"] = str(int(self.changed_since.timestamp()))
        if self.changed_until is not None:
            body["changedUntil"] = str(int(self.changed_until.timestamp()))
        return body


@dataclass
class ExportedFile:
    """An export on disk: its slices in order, and how to read them."""

    file_type: str  # csv | parquet
    slices: list[Path] = field(default_factory=list)
    job_created: datetime | None = None  # when Keboola created the job (its clock)
    file_id: int | None = None


@dataclass(frozen=True)
class Exporter:
    client: StorageClient
    parallel: int = 8
    job_timeout: float = 3600
    first_poll: float = 1.0
    clock: Callable[[], float] = time.monotonic

    def export(
        self,
        table: str,
        params: ExportParams,
        workdir: Path,
        damaged: Collection[int] = (),
    ) -> ExportedFile:
        """Export ``table`` into ``workdir``. Keboola hands back its cached file for the
        same parameters on unchanged data: one found ``damaged`` before (a slice stored
        cut off) came back at every retry, and the sync never recovered. Such a file is
        asked for again with other parameters (uncompressed), which Keboola exports anew."""
        bucket = table.rsplit(".", 1)[0]
        path = f"/v2/storage/tables/{quote(table, safe='')}/export-async"
        job = an_object(self.client.post(path, params.body(), bucket), f"POST {path}", needs=JOB)
        job = self.wait_for(job, table)
        try:
            file_id = int(job["results"]["file"]["id"])
        except (KeyError, TypeError, ValueError):
            raise TerminalSyncError(
                f"Keboola's export job {job.get('id')} of {table} succeeded without a file id."
            ) from None
        if file_id in damaged:
            if not params.gzip:
                raise TransientSyncError(
                    f"Keboola's export of {table} is its cached file {file_id}, found "
                    "damaged before, again.",
                    hint="The sync is retried later; a change to the table in Keboola also "
                    "makes a new export.",
                    details={"file_id": file_id},
                )
            logger.info(
                "Keboola's export of %s is its cached file %d, found damaged before; "
                "exporting anew (uncompressed)",
                table,
                file_id,
            )
            return self.export(table, replace(params, gzip=False), workdir, damaged)
        info = self._file_info(file_id, table, bucket)
        if not isinstance(info, dict) or not info.get("url"):
            raise TransientSyncError(
                f"Keboola's file {file_id} (the export of {table}) has no download url.",
                hint="The sync is retried with a new export.",
            )
        workdir.mkdir(parents=True, exist_ok=True)
        exported = ExportedFile(
            file_type=str(info.get("fileType") or params.file_type),
            job_created=_timestamp(job.get("createdTime")),
            file_id=file_id,
        )
        if is_sliced(info):
            entries = manifest_urls(self.client.fetch_json(str(info["url"])), file_id)
            exported.slices = self._download_all(entries, info, workdir)
        else:
            target = workdir / "slice-00000"
            self.client.download(str(info["url"]), target)
            exported.slices = [target]
        exported.file_type = _settle_type(exported)
        exported.slices = [s for s in exported.slices if not _empty(s, exported.file_type)]
        return exported

    def _file_info(self, file_id: int, table: str, bucket: str) -> Any:
        """The export's file detail. A 404 here is not a missing table (a terminal
        "no such object" ended the sync): the job has just named the file, which is not
        yet visible to the files API. Still missing, the sync is retried (transient)
        with a new export."""
        path = f"/v2/storage/files/{file_id}"
        return self._until_visible(
            path,
            {"federationToken": 1},
            bucket,
            lambda: TransientSyncError(
                f"Keboola's file {file_id} (the export of {table}) was not found after "
                f"{self.client.attempts} attempts, though its job named it.",
                hint="The file is not yet visible in Keboola's file storage; the sync is "
                "retried with a new export.",
                details={"file_id": file_id},
            ),
        )

    def _until_visible(
        self,
        path: str,
        params: dict[str, Any] | None,
        bucket: str | None,
        missing: Callable[[], TransientSyncError],
    ) -> Any:
        """GET an object the export has just made (its job, its file), which the stack
        may not show at once: a 404 is asked again with the client's backoff, up to its
        attempts; still 404, ``missing()`` is raised (a new export is the way out)."""
        for attempt in range(1, self.client.attempts + 1):
            try:
                return self.client.get(path, params, bucket)
            except SourceTableNotFound:
                if attempt >= self.client.attempts:
                    break
                self.client.sleep(min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)))
        raise missing()

    def wait_for(self, job: dict[str, Any], table: str) -> dict[str, Any]:
        """Poll the job until it ends; its ``error`` ends the sync with Keboola's message."""
        deadline = self.clock() + self.job_timeout
        pause = self.first_poll
        polled = False
        while True:
            status = job.get("status")
            if status == "success":
                return job
            if status == "error":
                error = job.get("error") or {}
                message = error.get("message") if isinstance(error, dict) else str(error)
                raise TerminalSyncError(
                    f"Keboola's export of {table} failed: {message or 'no message'}",
                    hint="Keboola's message says why; fix the table or the filter in Keboola.",
                    details={
                        "job": job.get("id"),
                        "keboola_code": error.get("code") if isinstance(error, dict) else None,
                    },
                )
            if status in STOPPED:
                raise TransientSyncError(
                    f"Keboola's export job {job.get('id')} of {table} was {status} in Keboola.",
                    hint="Someone or something stopped the job; the sync is retried with a "
                    "new export.",
                    details={"job": job.get("id")},
                )
            if status not in RUNNING:
                raise TerminalSyncError(
                    f"Keboola's export job {job.get('id')} of {table} is '{status}', "
                    f"not one of {', '.join(RUNNING + STOPPED)}, success or error."
                )
            if polled:  # the first poll is at once: a cached export is ready already
                if self.clock() + pause > deadline:
                    raise TransientSyncError(
                        f"Keboola's export of {table} did not finish within "
                        f"{self.job_timeout:.0f} s (job {job.get('id')} is still {status}).",
                        hint="Raise the source's job_timeout_seconds for very large tables.",
                    )
                self.client.sleep(pause)
                pause = min(MAX_POLL, pause * 1.5)
            polled = True
            job = self._poll(job["id"], table)

    def _poll(self, job_id: Any, table: str) -> dict[str, Any]:
        """The job's state now. A job just created can answer 404 for a moment on some
        stacks: that ended the sync at once as a terminal "no such object"."""
        path = f"/v2/storage/jobs/{quote(str(job_id), safe='')}"
        answer = self._until_visible(
            path,
            None,
            None,
            lambda: JobNotFound(
                f"Keboola's export job {job_id} of {table} was not found after "
                f"{self.client.attempts} attempts, though the export had just created it.",
                hint="The stack does not show the job (yet); the sync is retried with a new "
                "export. If this repeats, check the source's url names the stack the token "
                "belongs to.",
                details={"job": job_id},
            ),
        )
        return an_object(answer, f"GET {path}", needs=JOB)

    def _download_all(self, entries: list[str], info: dict[str, Any], workdir: Path) -> list[Path]:
        ordered = sorted(entries, key=slice_index)
        targets = [workdir / f"slice-{i:05d}" for i in range(len(ordered))]
        if not ordered:
            return []
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(ordered))) as pool:
            futures = []
            for entry, target in zip(ordered, targets, strict=True):
                url, headers = resolve(entry, info)
                futures.append(pool.submit(self.client.download, url, target, headers, stop))
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            stop.set()  # a failure: the others stop between chunks
            for future in pending:
                future.cancel()
            for future in done:
                future.result()  # the first failure, re-raised
        return targets


def is_sliced(info: dict[str, Any]) -> bool:
    """A sliced file (its url is a manifest): ``isSliced``, or a file named ``*manifest``
    (the API reference's own detail of a ``.csvmanifest`` file says ``isSliced: false``;
    read as data, the manifest would be one bad row)."""
    return bool(info.get("isSliced")) or str(info.get("name") or "").endswith("manifest")


def manifest_urls(manifest: Any, file_id: int) -> list[str]:
    """The slices' urls of a manifest ``{"entries": [{"url": ...}, ...]}``, each object
    once: a slice named twice (the same object, whatever query its url carries) would be
    downloaded and read twice, its rows published twice."""
    entries = manifest.get("entries") if isinstance(manifest, dict) else None
    if entries is None and isinstance(manifest, dict):
        entries = []  # no slices: an empty export
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("url"), str) and e["url"] for e in entries
    ):
        raise TerminalSyncError(
            f'The manifest of Keboola\'s file {file_id} is not {{"entries": [{{"url": ...}}]}}.'
        )
    urls: dict[tuple[str, str, str], str] = {}
    for entry in entries:
        parts = urlsplit(str(entry["url"]))
        urls.setdefault((parts.scheme.lower(), parts.netloc.lower(), parts.path), entry["url"])
    return list(urls.values())


def slice_index(url: str) -> tuple[Any, ...]:
    """Natural sort key of a slice's file name: ``…_0_0_10.csv.gz`` after ``…_0_0_9.csv.gz``."""
    name = PurePosixPath(urlsplit(url).path).name or url
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(name)
    )


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _settle_type(exported: ExportedFile) -> str:
    """Trust the bytes over the label: a parquet slice starts with ``PAR1``."""
    for path in exported.slices:
        with path.open("rb") as handle:
            head = handle.read(4)
        if head:
            return "parquet" if head == _PARQUET_MAGIC else "csv"
    return exported.file_type


def _empty(path: Path, file_type: str) -> bool:
    """An empty slice (no rows) would trip the readers."""
    if path.stat().st_size == 0:
        return True
    if file_type != "csv":
        return False
    with path.open("rb") as handle:
        if handle.read(2) != _GZIP_MAGIC:
            return False
    with gzip.open(path, "rb") as unpacked:
        return not unpacked.read(1)


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


_SAMPLE_BYTES = 1 << 20
_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')


def row_separator(path: Path) -> str | None:
    """The row separator of a CSV slice, ``\\n`` or ``\\r\\n``, read from its first line
    break outside quotes (DuckDB, told not to sniff, takes the first line break it meets,
    which may be a CRLF inside a quoted field: then no row reads). None when the first
    megabyte holds no such break (one long row: DuckDB's guess is as good)."""
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    quoted = False
    for found in _QUOTE_OR_NEWLINE.finditer(sample):
        if found.group() == b'"':
            quoted = not quoted  # a doubled quote inside a field toggles twice
        elif not quoted:
            at = found.start()
            return "\\r\\n" if at and sample[at - 1 : at] == b"\r" else "\\n"
    return None


def reader_sql(exported: ExportedFile, columns: Sequence[Column]) -> str:
    """A SELECT over the slices in order, typed as ``columns``."""
    if not exported.slices:
        return (
            "SELECT "
            + ", ".join(f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}" for c in columns)
            + " WHERE false"
        )
    listing = "[" + ", ".join(quote_literal(str(p)) for p in exported.slices) + "]"
    if exported.file_type == "parquet":
        casts = ", ".join(
            f"CAST({quote_ident(c.name)} AS {c.type}) AS {quote_ident(c.name)}" for c in columns
        )
        return f"SELECT {casts} FROM read_parquet({listing}, union_by_name = true)"
    struct = (
        "{" + ", ".join(f"{quote_literal(c.name)}: {quote_literal(c.type)}" for c in columns) + "}"
    )
    compression = "gzip" if is_gzip(exported.slices[0]) else "none"
    separator = row_separator(exported.slices[0])
    rows = f", new_line = '{separator}'" if separator else ""
    return (
        f"SELECT * FROM read_csv({listing}, header = false, columns = {struct}, "
        f"delim = ',', quote = '\"', escape = '\"', compression = '{compression}', "
        f"auto_detect = false, null_padding = false, allow_quoted_nulls = false, "
        f"max_line_size = {MAX_ROW_BYTES}, buffer_size = {2 * MAX_ROW_BYTES}{rows})"
    )
