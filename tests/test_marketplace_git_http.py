"""The feed as a read-only git repository over smart HTTP, with the real git client:
clone and fetch with a personal access token from a credential helper, the same commit
for the same content, pushes refused before anything else, no token refused cleanly,
revocation at the next fetch, and /healthz answering while a large clone streams."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import socket
import statistics
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import LiveServer, add_user, running_server, token_for
from tests.marketplace_feed_harness import PluginSpec, git, grant, publish

PLUGINS = [
    PluginSpec(
        "sql-review",
        {"commands/review.md": b"# Review SQL\n", "bin/check.sh": b"#!/bin/sh\necho ok\n"},
        executable=frozenset({"bin/check.sh"}),
    ),
    PluginSpec("dashboards", {"skills/dash/SKILL.md": b"---\nname: dash\n---\n"}),
]
BIG_FILES = 3
BIG_FILE_BYTES = 8 << 20  # random, so incompressible: ~24 MB to stream


@dataclass
class Repos:
    live: LiveServer
    analysts: str  # group id
    analyst: str
    analyst2: str
    big: str  # granted the large plugin only

    @property
    def url(self) -> str:
        return f"{self.live.base_url}/marketplace.git"


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repos]:
    with running_server(tmp_path_factory.mktemp("git") / "data") as live:
        services = live.services
        big = PluginSpec(
            "datasets",
            {f"data/part-{i}.bin": os.urandom(BIG_FILE_BYTES) for i in range(BIG_FILES)},
        )
        publish(services, "tools", PLUGINS)
        publish(services, "bulk", [big])
        analysts = services.groups.add("Analysts").id
        bulk = services.groups.add("Bulk").id
        grant(services, analysts, "tools/sql-review")
        grant(services, bulk, "bulk/datasets")
        analyst, analyst2 = (token_for(services, add_user(services, (analysts,))) for _ in range(2))
        yield Repos(
            live, analysts, analyst, analyst2, token_for(services, add_user(services, (bulk,)))
        )


def files_of(checkout: Path) -> dict[str, bytes]:
    return {
        p.relative_to(checkout).as_posix(): p.read_bytes()
        for p in sorted(checkout.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(checkout).parts
    }


def head(checkout: Path, ref: str = "HEAD") -> str:
    return git("rev-parse", ref, cwd=checkout).stdout.strip()


def test_clone_with_a_token_from_a_credential_helper(repos: Repos, tmp_path: Path) -> None:
    checkout = tmp_path / "feed"
    done = git("clone", repos.url, str(checkout), token=repos.analyst)
    assert done.returncode == 0, done.stderr
    files = files_of(checkout)
    assert sorted(files) == [
        ".claude-plugin/marketplace.json",
        "plugins/tools-sql-review/.claude-plugin/plugin.json",
        "plugins/tools-sql-review/bin/check.sh",
        "plugins/tools-sql-review/commands/review.md",
    ]
    assert files["plugins/tools-sql-review/bin/check.sh"] == b"#!/bin/sh\necho ok\n"
    assert os.access(checkout / "plugins/tools-sql-review/bin/check.sh", os.X_OK)
    assert not os.access(checkout / "plugins/tools-sql-review/commands/review.md", os.X_OK)
    document = json.loads(files[".claude-plugin/marketplace.json"])
    assert document["name"] == "agnes"
    assert document["plugins"][0]["source"] == "./plugins/tools-sql-review"
    with repos.live.client(repos.analyst) as client:
        archive = zipfile.ZipFile(io.BytesIO(client.get("/marketplace.zip").content))
    for name in archive.namelist():  # both channels serve the same bytes
        assert archive.read(name) == files[name]
    assert sorted(archive.namelist()) == sorted(files)
    assert git("symbolic-ref", "HEAD", cwd=checkout).stdout.strip() == "refs/heads/main"
    log = git("log", "--format=%an <%ae>|%at|%cn|%ct|%s", cwd=checkout).stdout.splitlines()
    assert log == ["Agnes <marketplace@agnes.invalid>|315532800|Agnes|315532800|agnes: 1 plugin(s)"]
    config = (checkout / ".git" / "config").read_text()
    assert repos.analyst not in config
    assert config.count("url = ") == 1 and f"url = {repos.url}\n" in config


def test_the_same_content_is_the_same_commit(repos: Repos, tmp_path: Path) -> None:
    commits: set[str] = set()
    for token, protocol in ((repos.analyst, "2"), (repos.analyst2, "0"), (repos.analyst, "1")):
        checkout = tmp_path / f"clone-{len(commits)}-{protocol}"
        done = git(
            "-c", f"protocol.version={protocol}", "clone", repos.url, str(checkout), token=token
        )
        assert done.returncode == 0, done.stderr
        commits.add(head(checkout))
    assert len(commits) == 1
    shallow = tmp_path / "shallow"
    done = git("clone", "--depth", "1", repos.url, str(shallow), token=repos.analyst2)
    assert done.returncode == 0, done.stderr
    assert head(shallow) in commits


def test_fetch_follows_new_and_revoked_grants(repos: Repos, tmp_path: Path) -> None:
    services = repos.live.services
    group = services.groups.add("Fetchers").id
    grant(services, group, "tools/sql-review")
    token = token_for(services, add_user(services, (group,)))
    checkout = tmp_path / "feed"
    assert git("clone", repos.url, str(checkout), token=token).returncode == 0
    first = head(checkout)

    def served_files() -> list[str]:
        done = git("fetch", "origin", cwd=checkout, token=token)
        assert done.returncode == 0, done.stderr
        return git("ls-tree", "-r", "--name-only", "origin/main", cwd=checkout).stdout.split()

    added = grant(services, group, "tools/dashboards")
    assert "plugins/tools-dashboards/skills/dash/SKILL.md" in served_files()
    assert head(checkout, "origin/main") != first
    services.grants.delete(added)
    assert not any("dashboards" in f for f in served_files())
    assert head(checkout, "origin/main") == first  # the same content again: the same commit


def test_push_is_refused_with_403(repos: Repos, tmp_path: Path) -> None:
    checkout = tmp_path / "feed"
    assert git("clone", repos.url, str(checkout), token=repos.analyst).returncode == 0
    (checkout / "extra.md").write_text("mine\n")
    author = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    assert git("add", "extra.md", cwd=checkout).returncode == 0
    assert git(*author, "commit", "-qm", "extra", cwd=checkout).returncode == 0
    pushed = git("push", "origin", "HEAD:main", cwd=checkout, token=repos.analyst)
    assert pushed.returncode != 0
    assert "403" in pushed.stderr
    # git shows a plain-text error body to its user: the reason, not only the status
    assert "remote: Pushing to the marketplace is refused: it is read-only." in pushed.stderr
    unchanged = tmp_path / "again"
    assert git("clone", repos.url, str(unchanged), token=repos.analyst).returncode == 0
    assert not (unchanged / "extra.md").exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/marketplace.git/info/refs?service=git-receive-pack"),
        ("POST", "/marketplace.git/git-receive-pack"),
        ("GET", "/marketplace.git/git-receive-pack"),
        ("PROPFIND", "/marketplace.git/"),
        ("PUT", "/marketplace.git/objects/ab/cdef"),
    ],
)
@pytest.mark.parametrize("who", ["nobody", "analyst", "oauth-looking"])
def test_anything_pushing_is_refused_before_auth(
    repos: Repos, method: str, path: str, who: str
) -> None:
    token = {"nobody": None, "analyst": repos.analyst, "oauth-looking": "agnesat_" + "x" * 43}[who]
    with repos.live.client(token) as client:
        answer = client.request(method, path, content=b"0000" if method != "GET" else None)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "git_push_refused"


def test_no_token_gets_a_basic_challenge_and_git_fails_cleanly(
    repos: Repos, tmp_path: Path
) -> None:
    with repos.live.client() as client:
        answer = client.get("/marketplace.git/info/refs", params={"service": "git-upload-pack"})
    assert answer.status_code == 401
    assert answer.headers.get_list("www-authenticate")[0] == 'Basic realm="Agnes marketplace"'
    anonymous = git("clone", repos.url, str(tmp_path / "anon"))
    assert anonymous.returncode != 0
    assert "terminal prompts disabled" in anonymous.stderr
    wrong = git("clone", repos.url, str(tmp_path / "wrong"), token="agnes_0000000000_" + "0" * 43)
    assert wrong.returncode != 0
    assert "Authentication failed" in wrong.stderr
    assert "remote: hint: Send a personal access token" in wrong.stderr  # where it goes
    assert "Authorization: Bearer <token>'; create" not in wrong.stderr  # not the API's
    assert not (tmp_path / "anon").exists() and not (tmp_path / "wrong").exists()


@pytest.mark.parametrize(
    "path",
    ["/marketplace.git/info/refs", "/marketplace.git/HEAD", "/marketplace.git/objects/info/packs"],
)
def test_dumb_http_is_not_served(repos: Repos, path: str) -> None:
    with repos.live.client(repos.analyst) as client:
        answer = client.get(path)
    assert answer.status_code == 404
    assert "smart HTTP" in answer.json()["error"]["message"]


def test_the_apps_guards_hold_for_git(repos: Repos) -> None:
    with repos.live.client(repos.analyst) as client:
        rebinding = client.get(
            "/marketplace.git/info/refs",
            params={"service": "git-upload-pack"},
            headers={"Host": "attacker.example.com"},
        )
        too_large = client.post(
            "/marketplace.git/git-upload-pack",
            content=b"0" * (int(repos.live.services.settings.max_request_bytes) + 1),
            headers={"Content-Type": "application/x-git-upload-pack-request"},
        )
    assert rebinding.status_code == 421
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"


# --- liveness while a large pack streams ----------------------------------------------


def pkt(line: str) -> bytes:
    return f"{len(line) + 4:04x}{line}".encode()


def slow_reader(base_url: str) -> httpx.Client:
    """A client with a small socket receive buffer: the server cannot push the pack
    ahead into the kernel (loopback buffers grow to tens of MB), so while this client
    holds back, the server is provably still streaming and git still producing."""
    options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 << 10)]
    transport = httpx.HTTPTransport(socket_options=options)
    return httpx.Client(base_url=base_url, timeout=120, transport=transport)


def upload_pack_request(repos: Repos) -> tuple[bytes, dict[str, str]]:
    """A protocol v0 fetch of the large feed's branch, by hand."""
    auth = {"Authorization": f"Bearer {repos.big}"}
    with repos.live.client() as client:
        advertised = client.get(
            "/marketplace.git/info/refs", params={"service": "git-upload-pack"}, headers=auth
        )
    assert advertised.status_code == 200, advertised.text
    # "001e# service=git-upload-pack\n0000" then "<len><sha> HEAD\0<capabilities>\n"
    commit = advertised.content.split(b"0000", 1)[1][4:44].decode()
    body = pkt(f"want {commit} ofs-delta\n") + b"0000" + pkt("done\n")
    return body, {**auth, "Content-Type": "application/x-git-upload-pack-request"}


def serving_git() -> list[psutil.Process]:
    """The git processes the server (in this test process) is running."""
    return [p for p in psutil.Process().children(recursive=True) if p.name().startswith("git")]


def test_healthz_answers_while_a_large_clone_streams(repos: Repos) -> None:
    """The pack is read 1 MiB per /healthz sample, so every sample is taken while the
    response is half sent and git is still producing it."""
    body, headers = upload_pack_request(repos)
    received = 0
    allowed = threading.Semaphore(0)
    started = threading.Event()
    total: list[int] = []

    def read_pack() -> None:
        nonlocal received
        with (
            slow_reader(repos.live.base_url) as client,
            client.stream(
                "POST", "/marketplace.git/git-upload-pack", content=body, headers=headers
            ) as answer,
        ):
            budget = 1 << 20
            for chunk in answer.iter_raw(64 << 10):
                received += len(chunk)
                started.set()
                if received >= budget:
                    allowed.acquire()  # one more MiB per /healthz sample
                    budget += 1 << 20
        total.append(received)

    samples = []
    with repos.live.client() as health:
        assert health.get("/healthz").status_code == 200  # a warm connection
        reader = threading.Thread(target=read_pack)
        reader.start()
        try:
            assert started.wait(60)
            for _ in range(9):
                assert serving_git() and not total  # streaming, and not over
                began = time.perf_counter()
                assert health.get("/healthz").status_code == 200
                samples.append(time.perf_counter() - began)
                assert serving_git() and not total  # it was streaming throughout
                allowed.release()
        finally:
            for _ in range(BIG_FILES * BIG_FILE_BYTES >> 20):
                allowed.release()  # let the rest of the pack through
            reader.join(120)
    assert total and total[0] > BIG_FILES * BIG_FILE_BYTES  # the whole pack came
    assert statistics.median(samples) < 0.1, samples


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_upload_pack_takes_plain_and_gzip_bodies(repos: Repos, encoding: str | None) -> None:
    body, headers = upload_pack_request(repos)
    if encoding:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": encoding}
    with repos.live.client() as client:
        answer = client.post("/marketplace.git/git-upload-pack", content=body, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-git-upload-pack-result"
    assert answer.content.startswith(b"0008NAK\nPACK")
    assert len(answer.content) > BIG_FILES * BIG_FILE_BYTES


def test_a_body_past_the_bound_once_inflated_never_reaches_git(repos: Repos) -> None:
    """A gzip body of ~10 KB that inflates to 9 MiB of haves (upload-pack would keep them
    all in memory) is refused before any backend starts; other encodings are refused."""
    _, headers = upload_pack_request(repos)
    have = b"0032have " + b"1" * 40 + b"\n"
    bomb = gzip.compress(have * ((9 << 20) // len(have)))
    assert len(bomb) < 100_000
    with repos.live.client() as client:
        answer = client.post(
            "/marketplace.git/git-upload-pack",
            content=bomb,
            headers={**headers, "Content-Encoding": "gzip", "User-Agent": "git/2.39.5"},
        )
        assert answer.status_code == 413 and not serving_git()
        assert answer.headers["content-type"].startswith("text/plain")  # git shows it
        assert "at most 8 MiB (inflated)" in answer.text
        odd = client.post(
            "/marketplace.git/git-upload-pack",
            content=b"0000",
            headers={**headers, "Content-Encoding": "br"},
        )
    assert odd.status_code == 422 and odd.json()["error"]["code"] == "invalid_request"


def test_a_users_git_requests_at_once_are_bounded(repos: Repos, tmp_path: Path) -> None:
    from agnes_mcp.marketplace.routes import GIT_SLOTS

    services = repos.live.services
    user = services.tokens.authenticate(repos.analyst).user_id
    limit = services.settings.marketplace.git_requests_per_user
    with contextlib.ExitStack() as held:
        for _ in range(limit):
            held.enter_context(
                GIT_SLOTS.hold(user, per_user=limit, total=10_000, timeout_seconds=30)
            )
        with repos.live.client(repos.analyst) as client:
            refused = client.get(
                "/marketplace.git/info/refs",
                params={"service": "git-upload-pack"},
                headers={"User-Agent": "git/2.39.5"},
            )
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        assert f"You already run {limit} git requests at once" in refused.text
        busy = git("clone", repos.url, str(tmp_path / "busy"), token=repos.analyst)
        assert busy.returncode != 0 and "remote: You already run" in busy.stderr
        other = git("clone", repos.url, str(tmp_path / "other"), token=repos.analyst2)
        assert other.returncode == 0  # another user is not held up
    assert git("clone", repos.url, str(tmp_path / "later"), token=repos.analyst).returncode == 0


def test_the_backends_own_refusals_pass_through(repos: Repos) -> None:
    body, headers = upload_pack_request(repos)
    with repos.live.client() as client:
        answer = client.post(
            "/marketplace.git/git-upload-pack",
            content=body,
            headers={**headers, "Content-Type": "text/plain"},
        )
    assert answer.status_code == 415  # git http-backend's CGI Status: line


def test_a_git_request_past_its_time_is_stopped(
    repos: Repos, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """marketplace.git_request_seconds bounds a git request however slowly its client
    reads: the backend and everything it started are killed, the answer ends short."""
    settings = repos.live.services.settings.marketplace
    monkeypatch.setattr(settings, "git_request_seconds", 1.0)
    body, headers = upload_pack_request(repos)
    with (
        caplog.at_level(logging.WARNING, logger="agnes.marketplace"),
        slow_reader(repos.live.base_url) as client,
        client.stream(
            "POST", "/marketplace.git/git-upload-pack", content=body, headers=headers
        ) as answer,
    ):
        chunks = answer.iter_raw(64 << 10)
        received = len(next(chunks))  # streaming, held back by this client
        serving = serving_git()
        assert serving
        _, alive = psutil.wait_procs(serving, timeout=30)  # the time limit ends them
        assert alive == []
        with pytest.raises(httpx.HTTPError):  # the rest never comes whole
            for chunk in chunks:
                received += len(chunk)
    assert received < BIG_FILES * BIG_FILE_BYTES
    assert "a git request ran past 1 s" in caplog.text


def test_a_client_leaving_mid_pack_stops_every_git_process(
    repos: Repos, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = upload_pack_request(repos)
    with caplog.at_level(logging.INFO, logger="agnes.marketplace"):
        with (
            slow_reader(repos.live.base_url) as client,
            client.stream(
                "POST", "/marketplace.git/git-upload-pack", content=body, headers=headers
            ) as answer,
        ):
            assert answer.status_code == 200
            chunks = answer.iter_raw(64 << 10)
            next(chunks)  # the pack is streaming, held back by this client
            serving = serving_git()
            assert len(serving) >= 2  # http-backend and upload-pack (and pack-objects)
            assert all(p.is_running() for p in serving)
        # leaving the block closed the connection halfway through the pack
        _, alive = psutil.wait_procs(serving, timeout=30)
    assert alive == []
    assert "a client left during a git request" in caplog.text  # stopped, not drained
