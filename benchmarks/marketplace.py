"""The plugin marketplace feed under load, against `agnes serve` in its own process.

- Concurrent ``git clone``s of one feed (20 plugins of random, incompressible data:
  ~20 MB; 50 clones) from Agnes's ``/marketplace.git`` against the same clones from
  plain ``git http-backend`` serving the *same* bare repository through Python's
  ``http.server`` CGI handler, in its own process, in the same run: wall time for all
  clones and the server's CPU (the process and every child it reaped: the backends and
  their upload-pack and pack-objects). Both sides speak protocol v0 (the CGI handler
  does not pass the ``Git-Protocol`` header), so each clone is the same two requests.
- ``/healthz`` p99 on Agnes while the clones run, against ``/healthz`` p99 idle.
- The feed's ZIP: the first ``GET /marketplace.zip`` (cold: the archive is built)
  against a cached one, and a cached one against a ``304`` (``If-None-Match``).
- The feed's git repository: the first ``git ls-remote`` (cold: fast-import and a
  bitmapped repack) against a cached one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.services import Services
from agnes_mcp.settings import load_settings
from agnes_mcp.store.groups import MembershipSource
from benchmarks.admin import WITHOUT_ADMIN
from benchmarks.harness import Result, agnes_process, median, percentile, time_calls, wait_ok
from tests.marketplace_feed_harness import (
    CREDENTIAL_HELPER,
    TOKEN_VARIABLE,
    PluginSpec,
    grant,
    publish,
)

PLUGINS = 20
CGI_SERVER = """
import http.server, os, sys
os.chdir(sys.argv[1])
http.server.CGIHTTPRequestHandler.cgi_directories = ["/cgi-bin"]
http.server.nobody_uid = os.getuid  # run the backend as this user (root would become nobody)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.CGIHTTPRequestHandler)
server.request_queue_size = 128
print(server.server_address[1], flush=True)
server.serve_forever()
"""
CGI_SCRIPT = """#!/bin/sh
GIT_PROJECT_ROOT='{root}' GIT_HTTP_EXPORT_ALL=1 exec git http-backend
"""


@dataclass
class Prepared:
    token: str  # the analyst's: granted every plugin
    plugin_bytes: int


def prepare(data_dir: Path, plugin_bytes: int) -> Prepared:
    """A data dir whose analyst is granted 20 plugins of random data (no git sync)."""
    services = Services.open(load_settings(data_dir=data_dir))
    try:
        specs = [
            PluginSpec(
                f"plugin-{i:02d}",
                {
                    "skills/main/SKILL.md": f"---\nname: skill-{i}\n---\n".encode(),
                    "data/blob.bin": os.urandom(plugin_bytes),
                },
            )
            for i in range(PLUGINS)
        ]
        publish(services, "bench", specs)
        group = services.groups.add("Analysts").id
        for spec in specs:
            grant(services, group, f"bench/{spec.name}")
        user = services.users.add("analyst@example.com", "Analyst")
        services.groups.add_member(group, user.id, MembershipSource.ADMIN)
        _, token = services.tokens.create(user.id, "bench", [TokenScope.DATA.value])
    finally:
        services.close()
    return Prepared(token, plugin_bytes * PLUGINS)


def git_env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "GIT_"))}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    if token is not None:
        env[TOKEN_VARIABLE] = token
    return env


def git_command(token: str | None, *args: str) -> list[str]:
    helper = ["-c", f"credential.helper={CREDENTIAL_HELPER}"] if token else []
    return ["git", "-c", "protocol.version=0", *helper, *args]


def clones(url: str, token: str | None, n: int, target: Path, expect_bytes: int) -> float:
    """Seconds for ``n`` concurrent ``git clone --no-checkout`` of ``url`` (each checked
    to hold at least ``expect_bytes`` of packs)."""
    env = git_env(token)
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            git_command(token, "clone", "-q", "--no-checkout", url, str(target / f"c{i}")),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(n)
    ]
    failures = [p.communicate()[1] for p in processes if p.wait() != 0]
    elapsed = time.perf_counter() - started
    assert not failures, failures[0].decode()
    for i in range(n):
        packs = (target / f"c{i}" / ".git" / "objects" / "pack").glob("*.pack")
        assert sum(p.stat().st_size for p in packs) >= expect_bytes, f"clone {i} is short"
    shutil.rmtree(target)
    return elapsed


def server_cpu(pid: int) -> float:
    """CPU seconds of the process and of every child it has reaped."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


@contextmanager
def health_poller(base_url: str) -> Iterator[list[float]]:
    """``GET /healthz`` back to back in a thread while the block runs; seconds each."""
    samples: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                samples.append(time.perf_counter() - started)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


@contextmanager
def plain_backend(project_root: Path, work: Path) -> Iterator[tuple[str, int]]:
    """``git http-backend`` through ``http.server``'s CGI handler: base URL and pid."""
    bin_dir = work / "cgi-bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "git"
    script.write_text(CGI_SCRIPT.format(root=project_root))
    script.chmod(0o755)
    process = subprocess.Popen(
        [sys.executable, "-c", CGI_SERVER, str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=git_env(None),
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/cgi-bin/git", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def ms(seconds: float) -> float:
    return seconds * 1000


def run(quick: bool = False) -> list[Result]:
    n_clones = 10 if quick else 50
    plugin_bytes = (256 << 10) if quick else (1 << 20)
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        prepared = prepare(data_dir, plugin_bytes)
        token = prepared.token
        auth = {"Authorization": f"Bearer {token}"}
        # n_clones at once from one token: the per-user and server limits on git requests
        # (4 and 16 by default; more are answered 429) are raised to let them all run
        limits = {
            "AGNES_MARKETPLACE__GIT_REQUESTS_PER_USER": str(n_clones),
            "AGNES_MARKETPLACE__GIT_REQUESTS": str(n_clones),
        }
        served = agnes_process(data_dir, "serve", entry=("-c", WITHOUT_ADMIN), settings=limits)
        with served as (process, url):
            wait_ok(f"{url}/healthz", time.monotonic() + 60)
            with httpx.Client(base_url=url, headers=auth, timeout=300) as client:
                cold_zip = time_calls(
                    lambda: client.get("/marketplace.zip").raise_for_status(), 1, warmup=0
                )
                zip_size = len(client.get("/marketplace.zip").content)
                cached_zip = time_calls(
                    lambda: client.get("/marketplace.zip").raise_for_status(), 20, warmup=0
                )
                info = client.get("/api/marketplace/info").json()
                etag = {"If-None-Match": info["etag"]}
                not_modified = time_calls(
                    lambda: client.get("/marketplace.zip", headers=etag), 20, warmup=0
                )
            ls_remote = git_command(token, "ls-remote", f"{url}/marketplace.git")

            def list_refs() -> None:
                subprocess.run(ls_remote, env=git_env(token), check=True, capture_output=True)

            cold_repo = time_calls(list_refs, 1, warmup=0)
            cached_repo = time_calls(list_refs, 5, warmup=0)
            repo = data_dir / "marketplaces" / "_feeds" / f"{info['key']}.git"
            with httpx.Client(base_url=url, timeout=30) as anonymous:
                idle_health = time_calls(lambda: anonymous.get("/healthz"), 200, warmup=0)
            agnes_git = f"{url}/marketplace.git"
            agnes_wall: list[float] = []
            agnes_cpu: list[float] = []
            plain_wall: list[float] = []
            plain_cpu: list[float] = []
            with plain_backend(repo.parent, root / "cgi") as (plain_url, plain_pid):
                plain_git = f"{plain_url}/{repo.name}"
                for i in range(rounds):  # interleaved: a busy machine slows both alike
                    for git_url, pid, who, wall, cpu in (
                        (agnes_git, process.pid, token, agnes_wall, agnes_cpu),
                        (plain_git, plain_pid, None, plain_wall, plain_cpu),
                    )[:: 1 if i % 2 == 0 else -1]:
                        before = server_cpu(pid)
                        target = root / f"clones-{i}"
                        wall.append(clones(git_url, who, n_clones, target, prepared.plugin_bytes))
                        cpu.append(server_cpu(pid) - before)
            with health_poller(url) as busy_health:  # a round of its own: polling costs CPU
                clones(agnes_git, token, n_clones, root / "polled", prepared.plugin_bytes)
    mb = prepared.plugin_bytes / 1e6
    what = f"{n_clones} concurrent git clones of a {PLUGINS}-plugin {mb:.0f} MB feed"
    return [
        Result(
            f"{what}, Agnes /marketplace.git (wall, median of {rounds})",
            median(agnes_wall),
            "s",
            "the same clones from plain git http-backend (http.server CGI), same repository",
            median(plain_wall),
            "ratio <= 1.5",
            note=f"protocol v0 both sides; clones --no-checkout; git request limits raised to "
            f"{n_clones} (default 4 per user, 16 in all: more are answered 429)",
        ),
        Result(
            f"{what}, Agnes server CPU (process + children)",
            median(agnes_cpu),
            "s",
            "plain git http-backend's server CPU (process + children)",
            median(plain_cpu),
            "ratio <= 1.5",
        ),
        Result(
            f"GET /healthz during {what} (p99)",
            ms(percentile(busy_health, 0.99)),
            "ms",
            "GET /healthz idle (p99)",
            ms(percentile(idle_health, 0.99)),
            "< 100 ms",
            note=f"{len(busy_health)} samples; p50 {ms(median(busy_health)):.2f} ms",
        ),
        Result(
            "GET /marketplace.zip, cold (the archive is built)",
            ms(cold_zip[0]),
            "ms",
            "GET /marketplace.zip, cached (p50)",
            ms(median(cached_zip)),
            "report",
            note=f"{zip_size / 1e6:.1f} MB archive",
        ),
        Result(
            "GET /marketplace.zip, cached (p50)",
            ms(median(cached_zip)),
            "ms",
            "GET /marketplace.zip with a matching If-None-Match: 304 (p50)",
            ms(median(not_modified)),
            "report",
        ),
        Result(
            "git ls-remote, cold (fast-import and a bitmapped repack)",
            ms(cold_repo[0]),
            "ms",
            "git ls-remote, repository cached (p50)",
            ms(median(cached_repo)),
            "report",
        ),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(
            f"{r.name}: {r.value:.2f} {r.unit} vs {r.baseline_name}: {r.baseline:.2f} "
            f"({r.ratio:.2f}x; {r.target}){'; ' + r.note if r.note else ''}"
        )
