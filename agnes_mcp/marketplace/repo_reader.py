"""Reading one commit of a bare mirror: its tree and its blobs, with no checkout.

The tree comes from ``git ls-tree -r -z -l --full-tree`` (every file with its mode and
size), the blobs from one long-lived ``git cat-file --batch``. Nothing is written outside
the mirror and no working tree exists, so a hostile tree (links out of the repository,
odd names) is only ever data. Symbolic links are followed here, inside the tree: a link
to a file elsewhere in the repository gives that file; anything else is refused.
"""

from __future__ import annotations

import posixpath
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agnes_mcp.errors import MarketplaceFetchFailed, MarketplaceRepoInvalid
from agnes_mcp.marketplace.git_command import git_binary, git_env

REGULAR = ("100644", "100755")
SYMLINK = "120000"
GITLINK = "160000"
_MAX_LINK_HOPS = 8
_MAX_LINK_BYTES = 4096
_LISTING_CHUNK = 1 << 16
_LINK_HINT = "Replace the link with the file itself, or point it at a file inside the repository."


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    sha: str
    size: int  # bytes of the blob (0 for a submodule)

    @property
    def executable(self) -> bool:
        return self.mode == "100755"


class RepoReader:
    """The files of one commit; open with :meth:`open` (a ``cat-file`` process)."""

    def __init__(self, commit: str, entries: dict[str, TreeEntry], blobs: _BlobReader) -> None:
        self.commit = commit
        self.entries = entries
        self._blobs = blobs
        self._folders = {""}
        for path in entries:
            parent = posixpath.dirname(path)
            while parent and parent not in self._folders:
                self._folders.add(parent)
                parent = posixpath.dirname(parent)

    @classmethod
    @contextmanager
    def open(cls, mirror: Path, commit: str, max_files: int) -> Iterator[RepoReader]:
        entries = _list_tree(mirror, commit, max_files)
        with _BlobReader.start(mirror) as blobs:
            yield cls(commit, entries, blobs)

    def is_folder(self, path: str) -> bool:
        return path in self._folders

    def under(self, folder: str) -> list[TreeEntry]:
        """Every entry inside ``folder`` ('' for the whole tree), sorted by path."""
        prefix = f"{folder}/" if folder else ""
        return sorted(
            (entry for path, entry in self.entries.items() if path.startswith(prefix)),
            key=lambda entry: entry.path,
        )

    def read(self, entry: TreeEntry) -> bytes:
        return self._blobs.read(entry.sha)

    def resolve(self, path: str) -> TreeEntry:
        """The regular file at ``path``, following symbolic links inside the tree; an
        error naming ``path`` for a submodule, a link out of the tree, to a folder,
        dangling, or a chain that does not end in a file."""
        current = path
        for _ in range(_MAX_LINK_HOPS):
            entry = self.entries.get(current)
            if entry is None and current == path:
                raise MarketplaceRepoInvalid(f"{path} is not in the commit.")
            if entry is None:
                what = "is a folder" if current in self._folders else "does not exist"
                raise MarketplaceRepoInvalid(
                    f"{path} is a symbolic link to {current}, which {what} in the commit.",
                    hint=_LINK_HINT,
                )
            if entry.mode in REGULAR:
                return entry
            if entry.mode == GITLINK:
                raise MarketplaceRepoInvalid(
                    f"{current} is a git submodule; submodules are not served.",
                    hint="Copy the files into the repository instead of a submodule.",
                )
            if entry.mode != SYMLINK:
                raise MarketplaceRepoInvalid(f"{current} has an unknown file mode {entry.mode}.")
            current = self._link_target(path, entry)
        raise MarketplaceRepoInvalid(
            f"{path} is a chain of more than {_MAX_LINK_HOPS} symbolic links.", hint=_LINK_HINT
        )

    def _link_target(self, origin: str, link: TreeEntry) -> str:
        if link.size > _MAX_LINK_BYTES:
            raise MarketplaceRepoInvalid(f"{link.path} is a symbolic link too long to follow.")
        raw = self.read(link)
        try:
            target = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MarketplaceRepoInvalid(
                f"{link.path} is a symbolic link whose target is not UTF-8.", hint=_LINK_HINT
            ) from None
        shown = target if origin == link.path else f"{target} (through {link.path})"
        if target.startswith("/") or "\\" in target or "\0" in target:
            raise MarketplaceRepoInvalid(
                f"{origin} is a symbolic link to '{shown}', outside the repository.",
                hint=_LINK_HINT,
            )
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(link.path), target))
        if joined == ".." or joined.startswith("../") or joined in (".", ""):
            raise MarketplaceRepoInvalid(
                f"{origin} is a symbolic link to '{shown}', which leaves the repository.",
                hint=_LINK_HINT,
            )
        return joined


def _list_tree(mirror: Path, commit: str, max_files: int) -> dict[str, TreeEntry]:
    """Every entry of ``commit``, read from ``git ls-tree`` as it streams: a commit of more
    than ``max_files`` entries is refused once it has listed that many (a few megabytes of
    pack can hold millions of empty files, whose listing held whole would take gigabytes
    of the server's memory)."""
    entries: dict[str, TreeEntry] = {}
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(  # noqa: S603 - a fixed binary and argument list
            [
                git_binary(),
                "--git-dir",
                str(mirror),
                "ls-tree",
                "-r",
                "-z",
                "-l",
                "--full-tree",
                commit,
            ],
            env=git_env(protocols=()),
            stdout=subprocess.PIPE,
            stderr=errors,
        ) as process,
    ):
        assert process.stdout is not None
        try:
            pending = b""
            while chunk := process.stdout.read(_LISTING_CHUNK):
                *records, pending = (pending + chunk).split(b"\0")
                for record in records:
                    if len(entries) >= max_files:
                        raise MarketplaceRepoInvalid(
                            f"Commit {commit[:12]} holds more than {max_files:,} files; a "
                            "repository that large is not read.",
                            hint="Keep the marketplace in a repository of its own, or raise "
                            "the setting marketplace.max_repo_files.",
                        )
                    entry = _tree_entry(record)
                    entries[entry.path] = entry
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if code != 0 or pending:  # a listing ending mid-entry too
            errors.seek(0)
            raise MarketplaceFetchFailed(
                f"Could not read commit {commit[:12]} of the mirror: "
                f"{errors.read().decode(errors='replace').strip()}",
                hint="The mirror may be damaged: remove and add the marketplace again.",
            )
    return entries


def _tree_entry(record: bytes) -> TreeEntry:
    """One ``ls-tree -l`` record: ``<mode> <type> <sha> <size>\t<path>``."""
    meta, _, raw_path = record.partition(b"\t")
    mode, _kind, sha, size = meta.decode().split()
    try:
        path = raw_path.decode("utf-8")
    except UnicodeDecodeError:
        raise MarketplaceRepoInvalid(
            f"A file name in the repository is not UTF-8 ({raw_path!r}).",
            hint="Rename the file with a UTF-8 name.",
        ) from None
    return TreeEntry(path, mode, sha, 0 if size == "-" else int(size))


class _BlobReader:
    """One ``git cat-file --batch`` answering blob requests in turn."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._stdin: IO[bytes] = process.stdin  # type: ignore[assignment]
        self._stdout: IO[bytes] = process.stdout  # type: ignore[assignment]

    @classmethod
    @contextmanager
    def start(cls, mirror: Path) -> Iterator[_BlobReader]:
        process = subprocess.Popen(  # noqa: S603 - a fixed binary and argument list
            [git_binary(), "--git-dir", str(mirror), "cat-file", "--batch"],
            env=git_env(protocols=()),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield cls(process)
        finally:
            process.kill()
            process.wait()

    def read(self, sha: str) -> bytes:
        self._stdin.write(f"{sha}\n".encode())
        self._stdin.flush()
        header = self._stdout.readline().decode().split()
        if len(header) != 3 or header[1] != "blob":
            raise MarketplaceFetchFailed(
                f"The mirror lacks object {sha[:12]} ({' '.join(header[1:]) or 'no answer'}).",
                hint="The mirror may be damaged: remove and add the marketplace again.",
            )
        size = int(header[2])
        data = self._stdout.read(size)
        self._stdout.read(1)  # the newline after each object
        return data
