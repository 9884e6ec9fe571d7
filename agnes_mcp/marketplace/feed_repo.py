"""A feed as a bare git repository: one commit on ``main`` holding the served tree.

Built with the git binary (through :mod:`.git_command`): ``git init --bare``, then
``git fast-import`` with a fixed author, committer, time and message, so the same files
always make the same commit id: two callers with the same grants clone the same commit.
A feed's history is that one root commit; when grants or plugins change, ``main`` moves
to another root commit (a forced update for a clone, which ``git fetch`` takes; a
``git pull`` cannot fast-forward it, so clients reset to ``origin/main``). Then
``git repack -a -d -b`` writes one pack with a reachability bitmap, so every clone
streams the stored pack instead of counting and compressing objects again.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from agnes_mcp.errors import InternalError
from agnes_mcp.marketplace.feed import Feed
from agnes_mcp.marketplace.feed_files import FeedFile
from agnes_mcp.marketplace.git_command import git_binary, git_env, run_git

logger = logging.getLogger("agnes.marketplace")

BRANCH = "main"
IDENTITY = b"Agnes <marketplace@agnes.invalid> 315532800 +0000"  # 1980-01-01T00:00:00Z


def commit_message(feed: Feed) -> bytes:
    """What ``git log`` shows: the marketplace and its plugins, never who asked."""
    lines = [f"{feed.name}: {len(feed.entries)} plugin(s)", ""]
    for entry in feed.entries:
        version = f" {entry.plugin.version}" if entry.plugin.version else ""
        lines.append(f"- {entry.shown_name}{version} ({entry.plugin.grant_id})")
    return ("\n".join(lines).rstrip() + "\n").encode()


def quote_path(path: str) -> bytes:
    """A path as fast-import reads it: C-style quoted, so no name can break the stream."""
    out = bytearray(b'"')
    for byte in path.encode():
        if byte in (0x22, 0x5C):  # '"' and '\'
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b'"')


def write_stream(feed: Feed, files: Sequence[FeedFile], stream: BinaryIO) -> None:
    """The fast-import commands for the feed's one commit, file contents inline."""
    message = commit_message(feed)
    stream.write(b"commit refs/heads/" + BRANCH.encode() + b"\n")
    stream.write(b"author " + IDENTITY + b"\ncommitter " + IDENTITY + b"\n")
    stream.write(b"data %d\n" % len(message) + message)
    for file in files:
        mode = b"100755" if file.executable else b"100644"
        stream.write(b"M " + mode + b" inline " + quote_path(file.path) + b"\n")
        stream.write(b"data %d\n" % file.size)
        written = 0
        for chunk in file.chunks():
            written += len(chunk)
            stream.write(chunk)
        if written != file.size:
            raise InternalError(f"The stored file {file.path} changed size while being served.")
        stream.write(b"\n")
    stream.write(b"done\n")


def build_repo(feed: Feed, files: Sequence[FeedFile], target: Path, timeout: float) -> None:
    """Create the bare repository at ``target`` (a new path; the caller renames it)."""
    _git(["init", "--bare", "--quiet", "--template=", f"--initial-branch={BRANCH}", str(target)])
    _fast_import(feed, files, target, timeout)
    _git(["--git-dir", str(target), "repack", "-a", "-d", "-b", "-q"], timeout=timeout)
    _git(["--git-dir", str(target), "pack-refs", "--all"], timeout=timeout)


def _fast_import(feed: Feed, files: Sequence[FeedFile], target: Path, timeout: float) -> None:
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - a fixed binary and argument list
            [git_binary(), "--git-dir", str(target), "fast-import", "--quiet", "--done"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=git_env(),
        )
        assert process.stdin is not None
        try:
            write_stream(feed, files, process.stdin)  # type: ignore[arg-type]
            process.stdin.close()
            code = process.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            process.kill()
            process.wait()
            errors.seek(0)
            _failed("fast-import", errors.read(), exc)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if code != 0:
            errors.seek(0)
            _failed("fast-import", errors.read())


def _git(args: list[str], timeout: float = 60.0) -> None:
    done = run_git(args, env=git_env(), timeout=timeout)
    if done.returncode != 0:
        _failed(args[2] if args[0] == "--git-dir" else args[0], done.stderr)


def _failed(step: str, stderr: bytes, cause: BaseException | None = None) -> None:
    logger.error("building a feed repository: git %s failed: %s", step, stderr.decode()[-2000:])
    raise InternalError(
        f"Building the marketplace's git repository failed (git {step}).",
        hint="The server log has git's message; try again, or ask an admin.",
    ) from cause
