"""Fetching one file of the manifest: streamed to a hidden partial file, resumed after an
interruption, large files in parallel byte ranges, verified against the manifest's
BLAKE3 hash, then renamed into place. Nothing unverified ever gets a ``.parquet`` name,
and the previous good file stays until the new one is whole.

The partial file is named after the hash it should end with
(``.orders.parquet.<hash16>.partial``), so a later pull resumes only the same version;
a ranged download also keeps the list of ranges already written beside it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from urllib.parse import quote

from agnes_sync import atomic
from agnes_sync.errors import AgnesError
from agnes_sync.hashing import file_hash, new_hasher
from agnes_sync.pull.pause import pause
from agnes_sync.pull.plan import FileJob
from agnes_sync.pull.transport import Body, PullTransport
from agnes_sync.writeback import Writeback

CHUNK = 1 << 20
RANGE_BYTES = 64 << 20  # files of at least two ranges are fetched in parallel ranges

Progress = Callable[[int], None]


class DownloadFailed(AgnesError):
    code = "download_failed"
    status = 502
    default_hint = "Run 'agnes pull' again: it resumes, and the previous files stay in use."


class DownloadCorrupt(DownloadFailed):
    code = "download_corrupt"


def partial_path(destination: Path, digest: str) -> Path:
    return destination.with_name(f".{destination.name}.{digest[:16]}.partial")


def _ranges_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".ranges")


def _url(job: FileJob) -> str:
    return f"/api/data/{quote(job.table, safe='')}/download"


def _params(job: FileJob) -> dict[str, str] | None:
    return {"part": job.part} if job.part else None


IDENTITY = {"Accept-Encoding": "identity"}  # the file's own bytes, as the hash covers them


def _body(response: Body, job: FileJob) -> Iterator[bytes | memoryview]:
    """The body as it arrives (no re-chunking: copying into 1 MiB blocks cost ~30% of a
    loopback pull's time); an encoded body is refused, the hash is over the file's bytes."""
    encoding = response.header("content-encoding") or "identity"
    if encoding != "identity":
        raise DownloadFailed(
            f"{job.relative}: the server (or a proxy) encoded the body ({encoding})."
        )
    return response.chunks()


def _check_tag(etag: str | None, job: FileJob) -> None:
    if etag is not None and etag.strip('"') != job.hash:
        raise DownloadFailed(
            f"{job.relative} changed on the server during the pull.",
            hint="Run 'agnes pull' again to fetch the new version.",
        )


def fetch(
    downloads: PullTransport,
    job: FileJob,
    data: Path,
    progress: Progress,
    ranges: Executor | None = None,
    range_bytes: int = RANGE_BYTES,
    finisher: Executor | None = None,
) -> Future[None] | None:
    """Fetch ``job`` into ``data``; raises DownloadFailed (the old file stays) on failure.

    The verified file is flushed and renamed into place here, or, given a ``finisher``,
    there (the future says how that went): this thread is then free for the next file
    while the disk catches up (a flush waits for the disk: ~10-20% of a loopback pull)."""
    destination = data / job.relative
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(destination, job.hash)
    if ranges is not None and job.size >= 2 * range_bytes:
        _ranged(downloads, job, partial, progress, ranges, range_bytes)
        digest = file_hash(partial, mapped=False)
    else:
        digest = _sequential(downloads, job, partial, progress)
    if digest != job.hash:
        atomic.discard(partial)
        atomic.discard(_ranges_path(partial))
        raise DownloadCorrupt(f"{job.relative} arrived damaged (its hash does not match).")
    if finisher is not None:
        return finisher.submit(_place, partial, destination)
    _place(partial, destination)
    return None


def _place(partial: Path, destination: Path) -> None:
    pause("before-rename")
    atomic.publish(partial, destination, sync_dir=False)  # the pull syncs each folder once
    atomic.discard(_ranges_path(partial))
    pause("between-files")


def _sequential(downloads: PullTransport, job: FileJob, partial: Path, progress: Progress) -> str:
    """Stream the body, resuming from what a previous pull left; returns the BLAKE3."""
    have = partial.stat().st_size if partial.exists() else 0
    if have == job.size:  # a previous pull got every byte but stopped before the rename
        progress(have)
        return file_hash(partial, mapped=False)
    if have > job.size:
        have = 0
    headers = {"Range": f"bytes={have}-", "If-Range": f'"{job.hash}"'} if have else {}
    headers |= IDENTITY
    hasher = new_hasher()
    with downloads.open(_url(job), _params(job), headers) as response:
        _check_tag(response.header("etag"), job)
        resumed = have > 0 and response.status == 206
        if resumed:
            with partial.open("rb") as done:
                while block := done.read(CHUNK):
                    hasher.update(block)
            progress(have)
        written = have if resumed else 0
        with partial.open("ab" if resumed else "wb") as out:
            flushing = Writeback(out.fileno(), written)
            for chunk in _body(response, job):
                out.write(chunk)
                flushing.wrote(len(chunk))
                hasher.update(chunk)
                written += len(chunk)
                progress(len(chunk))
                if written < job.size:
                    pause("partial-written", out)
            out.flush()
            flushing.finish()
    if written != job.size:
        raise DownloadFailed(
            f"{job.relative}: the server sent {written} of {job.size} bytes.",
        )
    return str(hasher.hexdigest())


def _write_at(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _ranged(
    downloads: PullTransport,
    job: FileJob,
    partial: Path,
    progress: Progress,
    pool: Executor,
    range_bytes: int,
) -> None:
    """Fetch the ranges not yet written, in parallel, into a file of the final size."""
    sidecar = _ranges_path(partial)
    count = (job.size + range_bytes - 1) // range_bytes
    try:
        done: set[int] = set(json.loads(sidecar.read_text())) if partial.exists() else set()
    except (OSError, ValueError):
        done = set()
    if not partial.exists() or partial.stat().st_size != job.size:
        done = set()
        with partial.open("wb") as out:
            out.truncate(job.size)
    progress(sum(min(range_bytes, job.size - i * range_bytes) for i in done))
    lock = threading.Lock()
    fd = os.open(partial, os.O_WRONLY)
    try:

        def one(index: int) -> None:
            start = index * range_bytes
            end = min(job.size, start + range_bytes) - 1
            headers = {"Range": f"bytes={start}-{end}", "If-Range": f'"{job.hash}"', **IDENTITY}
            with downloads.open(_url(job), _params(job), headers) as response:
                _check_tag(response.header("etag"), job)
                if response.status != 206:
                    raise DownloadFailed(f"{job.relative}: the server ignored a range request.")
                offset = start
                flushing = Writeback(fd, start)
                for chunk in _body(response, job):
                    if offset + len(chunk) > end + 1:
                        raise DownloadFailed(f"{job.relative}: a range came back too long.")
                    _write_at(fd, chunk, offset)
                    flushing.wrote(len(chunk))
                    offset += len(chunk)
                    progress(len(chunk))
                flushing.finish()
            if offset != end + 1:
                raise DownloadFailed(f"{job.relative}: a range came back short.")
            with lock:
                done.add(index)
                staged = atomic.staging_path(sidecar)
                staged.write_text(json.dumps(sorted(done)))
                staged.replace(sidecar)
            pause("range-written")

        futures = [pool.submit(one, i) for i in range(count) if i not in done]
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
    finally:
        os.close(fd)
