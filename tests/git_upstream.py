"""Upstream marketplace repositories for tests, built and served with the real ``git`` binary.

:class:`UpstreamRepo` writes files and commits in a plain git repository (no Agnes code).
:class:`GitHttpServer` serves a folder of repositories over git's smart HTTP by running
``git http-backend`` as a CGI program behind :mod:`http.server`, in a thread, and can ask
for HTTP Basic auth (one known password), cut the connection in the middle of a pack, or
hold requests at a gate until the test opens it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


class UpstreamRepo:
    """A working git repository in a test's tmp folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index_ready = False
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, input_bytes: bytes | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**os.environ, **_IDENTITY},
            input=input_bytes,
            capture_output=True,
            check=True,
        )
        return done.stdout.decode().strip()

    def write(self, rel: str, content: str | bytes, *, executable: bool = False) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(0o755 if executable else 0o644)

    def write_json(self, rel: str, document: Any) -> None:
        self.write(rel, json.dumps(document, indent=2) + "\n")

    def symlink(self, rel: str, target: str) -> None:
        link = self.path / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)

    def remove(self, rel: str) -> None:
        self.git("rm", "-r", "-q", "--cached", "--ignore-unmatch", rel)
        target = self.path / rel
        if target.is_symlink() or target.is_file():
            target.unlink()

    def gitlink(self, rel: str, commit: str) -> None:
        """A submodule entry (mode 160000) pointing at ``commit``, without .gitmodules; the
        next commit takes the index as it is (adding the work tree would drop the entry)."""
        self.git("add", "-A", ".")
        self.git("update-index", "--add", "--cacheinfo", f"160000,{commit},{rel}")
        self._index_ready = True

    def commit_raw_entry(self, name: str, content: bytes) -> str:
        """A commit on top of HEAD whose root tree also holds ``name`` as a file, whatever
        the name (git's own commands refuse '..' or '.git'; ``git mktree`` does not)."""
        blob = self.git("hash-object", "-w", "--stdin", input_bytes=content)
        listing = self.git("ls-tree", "HEAD") + f"\n100644 blob {blob}\t{name}\n"
        tree = self.git("mktree", input_bytes=listing.encode())
        commit = self.git("commit-tree", tree, "-p", "HEAD", "-m", f"raw {name}")
        self.git("update-ref", "refs/heads/main", commit)
        return commit

    def commit(self, message: str = "change") -> str:
        if not self._index_ready:
            self.git("add", "-A", ".")
        self._index_ready = False
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, annotated: bool = True) -> None:
        if annotated:
            self.git("tag", "-a", "-m", name, name)
        else:
            self.git("tag", name)

    def branch(self, name: str) -> None:
        self.git("branch", "-f", name)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    # --- Claude Code's marketplace format -------------------------------------------

    def write_plugin(
        self,
        folder: str,
        name: str,
        *,
        version: str = "1.0.0",
        description: str | None = None,
        files: dict[str, str | bytes] | None = None,
    ) -> None:
        manifest: dict[str, Any] = {"name": name, "version": version}
        if description is not None:
            manifest["description"] = description
        self.write_json(f"{folder}/.claude-plugin/plugin.json", manifest)
        for rel, content in (files or {f"commands/{name}.md": f"# {name}\n"}).items():
            self.write(f"{folder}/{rel}", content)

    def write_marketplace(
        self, plugins: list[dict[str, Any]], *, name: str = "team-tools", **extra: Any
    ) -> None:
        document = {"name": name, "owner": {"name": "Team"}, "plugins": plugins, **extra}
        self.write_json(".claude-plugin/marketplace.json", document)


def sample_marketplace(repo: UpstreamRepo) -> str:
    """Two plugins (``sql-review`` and ``notes``) in the usual layout; the commit."""
    repo.write_plugin(
        "plugins/sql-review",
        "sql-review",
        description="Reviews SQL.",
        files={
            "commands/review.md": "# Review\nCheck the query.\n",
            "scripts/run.sh": "#!/bin/sh\necho review\n",
        },
    )
    repo.write("plugins/sql-review/scripts/run.sh", "#!/bin/sh\necho review\n", executable=True)
    repo.write_plugin("plugins/notes", "notes", version="0.2.0")
    repo.write_marketplace(
        [
            {
                "name": "sql-review",
                "source": "./plugins/sql-review",
                "category": "data",
                "description": "Entry text.",
            },
            {"name": "notes", "source": "./plugins/notes", "description": "Notes from the entry."},
        ]
    )
    return repo.commit("two plugins")


# --- smart HTTP --------------------------------------------------------------------------


class GitHttpServer:
    """``git http-backend`` behind HTTP Basic auth on 127.0.0.1, serving ``root/<name>``."""

    def __init__(self, root: Path, *, password: str | None = None) -> None:
        self.root = root
        self.password = password
        self.drop_pack_after: int | None = None  # cut a fetch's response after this many bytes
        self.redirect_to: str | None = None  # answer every request with a 301 to this base URL
        self.requests = 0  # every request received
        self.gate = threading.Event()  # requests wait while it is clear (it opens at stop)
        self.gate.set()
        self.at_gate = threading.Event()  # set when a request waits at the closed gate
        self.fetches = 0  # pack requests answered (ref listings not counted)
        self.authorized_users: list[str] = []  # user names of accepted Basic credentials
        self.refused_auth = 0  # requests refused for wrong credentials (not for none)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> GitHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler_for(owner: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            body = self._read_body()
            owner.requests += 1
            if owner.redirect_to is not None:
                self.send_response(301)
                self.send_header("Location", owner.redirect_to.rstrip("/") + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if owner.password is not None and not self._authorized():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test upstream"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            env = {
                **os.environ,
                "GIT_PROJECT_ROOT": str(owner.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": "127.0.0.1",
            }
            for header, name in (
                ("Git-Protocol", "GIT_PROTOCOL"),
                ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ):
                if self.headers.get(header):
                    env[name] = self.headers[header]
            backend = subprocess.Popen(
                ["git", "http-backend"],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert backend.stdin is not None and backend.stdout is not None
            if not owner.gate.is_set():
                owner.at_gate.set()
                owner.gate.wait()
            is_fetch = b"command=fetch" in body or b"want " in body
            owner.fetches += is_fetch
            try:
                backend.stdin.write(body)
                backend.stdin.close()
                self._relay(backend.stdout, is_fetch=is_fetch)
            except ConnectionError:  # the client gave up (its timeout): nothing to answer
                self.close_connection = True
            finally:
                backend.kill()
                backend.wait()

        def _relay(self, out: Any, *, is_fetch: bool) -> None:
            status, headers = 200, []
            while (line := out.readline().rstrip(b"\r\n")) != b"":
                key, _, value = line.decode().partition(":")
                if key.lower() == "status":
                    status = int(value.strip().split()[0])
                else:
                    headers.append((key, value.strip()))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent = 0
            limit = owner.drop_pack_after if is_fetch else None
            while chunk := out.read1(4096):
                if limit is not None and sent + len(chunk) > limit:
                    self._write_chunk(chunk[: max(limit - sent, 1)])
                    self._drop()
                    return
                self._write_chunk(chunk)
                sent += len(chunk)
            self.wfile.write(b"0\r\n\r\n")

        def _write_chunk(self, chunk: bytes) -> None:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()

        def _drop(self) -> None:
            """Close the connection without the closing chunk, as a broken network would."""
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if password != owner.password:
                owner.refused_auth += 1
                return False
            owner.authorized_users.append(user)
            return True

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while (size := int(self.rfile.readline().split(b";")[0].strip(), 16)) > 0:
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    return Handler


@contextmanager
def serving(root: Path, *, password: str | None = None) -> Iterator[GitHttpServer]:
    with GitHttpServer(root, password=password) as server:
        yield server
