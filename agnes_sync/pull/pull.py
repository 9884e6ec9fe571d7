"""A pull, end to end: manifest -> plan -> downloads (bounded, in parallel) -> removals ->
state, manifest copy and the workspace's DuckDB file. One pull at a time per workspace.

A failed file keeps its previous good version and is reported; the others go ahead.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agnes_sync import atomic
from agnes_sync.errors import AgnesError
from agnes_sync.pull import failure
from agnes_sync.pull.download import RANGE_BYTES, fetch
from agnes_sync.pull.listing import Listing, read_listing
from agnes_sync.pull.pause import pause
from agnes_sync.pull.plan import FileJob, PullPlan, plan_pull
from agnes_sync.pull.progress import Quiet, Reporter
from agnes_sync.pull.state import FileState, PullState
from agnes_sync.pull.transport import ApiTransport, PullTransport
from agnes_sync.server_api import ServerApi
from agnes_sync.storage_errors import WorkspaceUnwritable, workspace_failure
from agnes_sync.workspace.inventory import table_files
from agnes_sync.workspace.layout import WorkspacePaths
from agnes_sync.workspace.lock import workspace_lock

if TYPE_CHECKING:
    from agnes_sync.workspace.local_db import Rebuild

STATE_FILE = "pull-state.json"


class PullBusy(AgnesError):
    code = "pull_running"
    status = 409
    default_hint = "Wait for the other 'agnes pull' in this workspace to finish."


@dataclass
class PullSummary:
    downloaded: int = 0
    unchanged: int = 0
    removed: int = 0
    forgotten: int = 0  # snapshots and kept results of tables no longer granted
    failed: list[dict[str, str]] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    tables: int = 0
    dry_run: bool = False

    def failure_lines(self) -> list[str]:
        """One line per failed file: the file, then why (a download's own message names
        its file already: not twice)."""
        return [failure_line(f) for f in self.failed]

    def as_dict(self) -> dict[str, object]:
        return {
            "downloaded": self.downloaded,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "forgotten": self.forgotten,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "tables": self.tables,
            "dry_run": self.dry_run,
        }


AGAIN_HINT = (
    "Run 'agnes pull' again to fetch the failed files (a download cut short resumes where "
    "it stopped); until then the previous copy of each stays."
)


def failed_hint(failed: list[dict[str, str]], again: str = "'agnes pull'") -> str:
    """What to do about the failed files of a pull: what their own errors say first (a
    workspace the disk refuses: free space or make it writable, which pulling again alone
    would not fix), then to pull again (``again``: how the caller's front end says it)."""
    own = dict.fromkeys(f["hint"] for f in failed if f.get("hint"))
    return " ".join([*own, AGAIN_HINT.replace("'agnes pull'", again)])


def failure_line(failure: dict[str, str]) -> str:
    """``file: why`` for one failed file of a summary (its ``failed`` entry)."""
    said = failure["message"]
    return said if said.startswith(failure["file"]) else f"{failure['file']}: {said}"


MANIFEST = "/api/sync/manifest"


def default_jobs() -> int:
    """Files fetched at once: each stream costs the client a core's worth of work at
    loopback speed, so more streams than cores only contend (measured on 2 cores: 2 jobs
    1.5 s, 4 jobs 1.6-1.8 s for 1 GB); more than 4 gains nothing on a real network."""
    return max(1, min(4, os.cpu_count() or 1))


def pull(
    paths: WorkspacePaths,
    api: ServerApi,
    *,
    jobs: int | None = None,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    range_bytes: int = RANGE_BYTES,
    transport: PullTransport | None = None,
) -> PullSummary:
    """``transport`` carries the requests (default: ``api``'s own client; the CLI passes
    a :class:`~agnes_sync.pull.transport.Wire`)."""
    started = time.perf_counter()
    reporter = reporter or Quiet()
    client = transport or ApiTransport(api)
    with workspace_lock(paths, "pull.lock", PullBusy):  # a refused write: workspace_unwritable
        state_path = paths.dot / STATE_FILE
        state = PullState.read(state_path)
        try:
            summary, stale = _pull_locked(
                paths, api, client, state, jobs, dry_run, reporter, range_bytes, started
            )
        except BaseException as exc:
            if not dry_run and paths.dot.is_dir():
                failure.record(paths.dot, _failed_because(exc), state.pulled_at, None)
            raise
        if not dry_run:
            if summary.failed:
                why = f"{len(summary.failed):,} file(s) did not download: " + failure_line(
                    summary.failed[0]
                )
                failure.record(paths.dot, why, state.pulled_at, stale)
            else:
                failure.clear(paths.dot)
    summary.seconds = time.perf_counter() - started
    return summary


def _failed_because(exc: BaseException) -> str:
    """A failed pull's reason, as its record keeps it."""
    if isinstance(exc, AgnesError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "it was stopped before it finished"
    return f"{type(exc).__name__}: {exc}"


def _pull_locked(
    paths: WorkspacePaths,
    api: ServerApi,
    client: PullTransport,
    state: PullState,
    jobs: int | None,
    dry_run: bool,
    reporter: Reporter,
    range_bytes: int,
    started: float,
) -> tuple[PullSummary, list[str]]:
    """The pull, under its lock: its summary and the tables whose files failed (their
    previous copies stay)."""
    state_path = paths.dot / STATE_FILE
    text, etag = client.get_text_if_changed(MANIFEST, state.manifest_etag or None)
    if text is None:  # the server lists exactly what the last pull got
        if paths.db.exists() and state.files_in_place(paths.data):
            summary = PullSummary(unchanged=len(state.files), tables=state.tables, dry_run=dry_run)
            summary.seconds = time.perf_counter() - started
            return summary, []
        text, etag = client.get_text_if_changed(MANIFEST, None)
        assert text is not None
    manifest = read_listing(text)
    plan = plan_pull(manifest, state, paths.data)
    summary = PullSummary(
        unchanged=len(plan.unchanged), tables=len(manifest.tables), dry_run=dry_run
    )
    if dry_run:
        summary.downloaded, summary.removed = len(plan.fetch), len(plan.remove)
        summary.bytes = plan.fetch_bytes
        summary.seconds = time.perf_counter() - started
        return summary, []
    paths.ensure()
    if plan.fetch:
        # What this pull sets out to fetch, until it ends: a pull stopped half way
        # (Ctrl-C, killed) leaves it, so a table with parts not yet here is known to
        # be incomplete (the first pull has no manifest.json to say so).
        atomic.write_text(paths.pending_manifest, text)
    views = _EarlyViews(paths, plan)
    try:
        fetched = _download(
            client,
            paths,
            plan,
            jobs or default_jobs(),
            reporter,
            summary,
            range_bytes,
            views.placed,
        )
        for folder in sorted({(paths.data / name).parent for name in fetched}):
            atomic.fsync_dir(folder)  # the renames are durable before the state says so
        summary.removed = _remove(paths.data, plan)
        summary.forgotten = _forget_revoked(paths, manifest)
        changed = bool(fetched or summary.removed) or etag != state.manifest_etag
        if changed or not paths.db.exists():
            # The manifest copy and the views first: the state (with the manifest's
            # ETag) is written last, so a pull killed before it is redone, never skipped.
            atomic.write_text(paths.manifest, text)
            views.finish()
            _keep_catalog(paths, client)
    finally:
        views.discard()  # what was begun and not finished (an error, nothing changed)
    pause("before-state")
    new_state = PullState(
        server_url=api.base_url,
        user=manifest.user,
        pulled_at=dt.datetime.now(dt.UTC).isoformat(),
        # A failed file is not in place: the next pull must read the manifest again.
        manifest_etag="" if summary.failed else (etag or ""),
        tables=len(manifest.tables),
        files={**plan.unchanged, **fetched},
    )
    new_state.write(state_path)
    atomic.discard(paths.pending_manifest)  # manifest.json says what is missing now
    failed = {f["file"] for f in summary.failed}
    return summary, sorted({j.table for j in plan.fetch if j.relative in failed})


class _EarlyViews:
    """The workspace's DuckDB file, begun while the files arrive: a table's view is made
    as soon as the last of its files this pull fetches is in place (the main thread
    waits on the downloads meanwhile), and the rest after the last file
    (:class:`~agnes_sync.workspace.local_db.Rebuild`). duckdb is imported at the first
    table done, not before: only a pull with work to do pays for it."""

    def __init__(self, paths: WorkspacePaths, plan: PullPlan) -> None:
        self._paths = paths
        self._waiting: dict[str, int] = {}
        for job in plan.fetch:
            self._waiting[job.table] = self._waiting.get(job.table, 0) + 1
        self._rebuild: Rebuild | None = None
        self._failed: set[str] = set()
        self._off = False  # early views could not be begun: all are made at the end
        # One name (the pull lock is held): a pull killed half way leaves it to the next.
        self.staged = paths.db.with_name(f".{paths.db.name}.pull{atomic.TMP_SUFFIX}")

    def placed(self, job: FileJob, ok: bool) -> None:
        """One fetched file is in place (``ok``) or failed. Never raises: anything that
        goes wrong here is left to :meth:`finish` (which makes every view there is)."""
        if not ok:
            self._failed.add(job.table)
        self._waiting[job.table] -= 1
        if self._waiting[job.table] or job.table in self._failed or self._off:
            return
        try:
            files = table_files(self._paths.data, job.table)
        except OSError:
            return
        if self._rebuild is None:
            from agnes_sync.workspace.local_db import Rebuild

            self._rebuild = Rebuild.begun(self._paths, self.staged)
            self._off = self._rebuild is None
        if self._rebuild is not None and files:
            self._rebuild.early(job.table, files)

    def finish(self) -> None:
        from agnes_sync.workspace import local_db

        rebuild, self._rebuild = self._rebuild, None
        if rebuild is None:
            local_db.rebuild(self._paths)
        else:
            rebuild.finish()

    def discard(self) -> None:
        if self._rebuild is not None:
            self._rebuild.discard()
            self._rebuild = None
        atomic.discard(self.staged)  # also what a pull killed before this one left


def _keep_catalog(paths: WorkspacePaths, client: PullTransport) -> None:
    """Keep the server's catalog and metric definitions for offline use (a nicety: a
    failure here never fails the pull)."""
    from agnes_sync.workspace import catalog_cache

    try:
        catalog_cache.refresh(paths, client)
    except AgnesError:
        return


def _download(
    downloads: PullTransport,
    paths: WorkspacePaths,
    plan: PullPlan,
    jobs: int,
    reporter: Reporter,
    summary: PullSummary,
    range_bytes: int,
    placed: Callable[[FileJob, bool], None],
) -> dict[str, FileState]:
    fetched: dict[str, FileState] = {}
    if not plan.fetch:
        return fetched
    reporter.start(len(plan.fetch), plan.fetch_bytes)
    # Ctrl-C (or any error) on this thread stops the downloads at their next chunk: the
    # pools' exit would otherwise wait for every file, started or queued, to arrive.
    stop = threading.Event()

    def advance(size: int) -> None:
        if stop.is_set():
            raise _Stopped
        reporter.advance(size)

    # With --jobs 1 each file is whole and in place before the next starts; otherwise a
    # finisher flushes and renames while the download threads go on to the next files.
    pipelined = jobs > 1
    try:
        with (
            ThreadPoolExecutor(max(1, jobs), thread_name_prefix="agnes-pull") as files,
            ThreadPoolExecutor(max(1, jobs), thread_name_prefix="agnes-range") as ranges,
            ThreadPoolExecutor(1, thread_name_prefix="agnes-place") as finisher,
        ):
            futures = {
                files.submit(
                    fetch,
                    downloads,
                    job,
                    paths.data,
                    advance,
                    ranges,
                    range_bytes,
                    finisher if pipelined else None,
                ): job
                for job in plan.fetch
            }
            try:
                for future in as_completed(futures):
                    job = futures[future]
                    ok = _record(future, job, paths, reporter, summary, fetched)
                    placed(job, ok)
            except BaseException:
                stop.set()  # a partial file stays, and the next pull resumes it
                for queued in futures:
                    queued.cancel()
                raise
    finally:
        reporter.finish()
    return fetched


class _Stopped(Exception):
    """A download stopped because the pull is stopping (its partial file stays)."""


def _record(
    future: Future[Future[None] | None],
    job: FileJob,
    paths: WorkspacePaths,
    reporter: Reporter,
    summary: PullSummary,
    fetched: dict[str, FileState],
) -> bool:
    """Count one finished download: in place (True), or failed with its reason."""
    error = future.exception()
    placed = None if error is not None else future.result()
    if placed is not None:
        error = placed.exception()
    reporter.file_done(job.relative, error is None)
    if error is not None and not isinstance(error, AgnesError):
        error = workspace_failure(error, paths.root) or error
    if error is None:
        stat = (paths.data / job.relative).stat()
        fetched[job.relative] = FileState(
            table=job.table, hash=job.hash, size=job.size, mtime_ns=stat.st_mtime_ns
        )
        summary.downloaded += 1
        summary.bytes += job.size
        return True
    if isinstance(error, AgnesError):
        failure = {"file": job.relative, "code": error.code, "message": error.message}
        if isinstance(error, WorkspaceUnwritable) and error.hint:
            failure["hint"] = error.hint  # what fixes it: pulling again alone would not
        summary.failed.append(failure)
    else:
        summary.failed.append(
            {"file": job.relative, "code": "download_failed", "message": str(error)}
        )
    return False


def _forget_revoked(paths: WorkspacePaths, manifest: Listing) -> int:
    """What was made here from tables the caller may no longer read (a grant revoked
    since the last pull, the remote ones included): their snapshots go, and the kept
    results (which do not say what they read) all go. Returns how many files went."""
    try:
        before = read_listing(paths.manifest.read_text("utf-8")).granted()
    except (OSError, AgnesError):
        return 0  # a first pull, or a manifest kept by an older client: nothing to compare
    revoked = before - manifest.granted()
    if not revoked:
        return 0
    from agnes_sync.snapshot_files import SnapshotFiles
    from agnes_sync.workspace import results

    snapshots = SnapshotFiles(paths.snapshots)
    gone = [meta.name for meta in snapshots.all() if meta.table_id in revoked]
    for name in gone:
        snapshots.drop(name)
    return len(gone) + results.clear(paths.results)


def _remove(data: Path, plan: PullPlan) -> int:
    """Remove what the manifest no longer lists, and partial files nobody will resume."""
    removed = 0
    for relative in plan.remove:
        target = data / relative
        if target.exists():
            atomic.discard(target)
            removed += 1
        _prune_empty(target.parent, data)
    resumable = {f".{Path(j.relative).name}.{j.hash[:16]}.partial" for j in plan.fetch}
    if data.is_dir():
        for stale in data.rglob(".*.partial*"):
            name = stale.name.removesuffix(".ranges")
            if name not in resumable:
                atomic.discard(stale)
                _prune_empty(stale.parent, data)
    return removed


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
