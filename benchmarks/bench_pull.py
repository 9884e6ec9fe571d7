"""`agnes pull` against a real `agnes serve` over loopback, as an analyst runs it (the CLI,
in its own process):

- cold pull of ~1 GB in 50 parquet files vs a raw streaming download of the same files
  in the same run (httpx and curl on one connection, and ``curl --parallel`` with as many
  connections as the pull uses, also followed by coreutils' ``sync`` of the files: durable,
  as the pull's files are), as throughput, median of interleaved rounds;
- a pull with nothing to do when the manifest lists 1,000 tables, vs the bare minimum
  any Python client pays (start, import httpx, GET the manifest);
- peak resident memory of a pull of one 2 GB file, vs a bare httpx streaming download.

The tables are written as extracts (the contract any connector writes) and the server
built over them, so setting up does not dominate the run; only the client is timed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from agnes_sync.orchestrator import Orchestrator
from agnes_sync.pull.pull import default_jobs
from agnes_sync.workspace.layout import WorkspacePaths
from benchmarks.bench_rebuild import write_extracts
from benchmarks.harness import Result, Server, agnes_server, compile_bytecode, median

# Incompressible columns: ~16 bytes a row on disk whatever the codec.
NOISE = "SELECT hash(range + {seed} * 1e12) AS a, hash(range * 7 + {seed}) AS b FROM range({rows})"
ROW_BYTES = 16

RAW_HTTPX = """
import sys, httpx
base, token, target, *parts = sys.argv[1:]
headers = {"Authorization": f"Bearer {token}"}
with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
    for i, (table, part) in enumerate(p.split("|") for p in parts):
        params = {"part": part} if part else None
        with client.stream("GET", f"/api/data/{table}/download", params=params) as r:
            r.raise_for_status()
            with open(f"{target}/{i}.parquet", "wb") as out:
                for chunk in r.iter_raw():
                    out.write(chunk)
"""

PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _env(server: Server, config_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        AGNES_SERVER_URL=server.base_url,
        AGNES_TOKEN=server.admin_token,
        AGNES_CONFIG_HOME=str(config_home),
    )
    return env


def _agnes() -> str:
    return str(Path(sys.executable).parent / "agnes")


def _wall(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _pull(workspace: Path, env: dict[str, str], *extra: str) -> list[str]:
    """The pull's command line, ``workspace`` made one first (as ``agnes init --no-pull``
    leaves it: a pull never makes one), outside any timing."""
    WorkspacePaths(workspace).ensure()
    return [_agnes(), "pull", "--workspace", str(workspace), "--quiet", *extra]


def _manifest_files(server: Server) -> list[tuple[str, str, int]]:
    import httpx

    answer = httpx.get(
        f"{server.base_url}/api/sync/manifest",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=60,
    ).json()
    return [
        (t["id"], p["path"] if len(t["parts"]) > 1 else "", p["size"])
        for t in answer["tables"]
        for p in t["parts"]
    ]


def _serve(
    root: Path, sources: int, tables: int, rows: int, select: str
) -> AbstractContextManager[Server]:
    """Extracts written, registered (as an admin would) and built, then served."""
    from agnes_mcp.services import Services
    from agnes_mcp.settings import load_settings
    from agnes_sync.table_spec import TableSpec

    data = root / "data"
    write_extracts(data, sources, tables, rows=rows, select=select)
    Orchestrator(data).rebuild()
    services = Services.open(load_settings(data_dir=data))
    try:
        for s in range(sources):
            for t in range(tables):
                services.registry.add(TableSpec(id=f"t{s:04d}_{t:03d}", source_type=f"src{s:04d}"))
    finally:
        services.store.close()
    return agnes_server(data)


def _curl_parallel(curl: str) -> bool:
    """``--parallel`` came with curl 7.66."""
    first = subprocess.run([curl, "--version"], capture_output=True, text=True).stdout
    version = tuple(int(n) for n in first.split()[1].split(".")[:2])
    return version >= (7, 66)


def _curl_argv(
    curl: str, server: Server, files: list[tuple[str, str, int]], target: Path, parallel: int = 0
) -> list[str]:
    argv = [curl, "-sf", "-H", f"Authorization: Bearer {server.admin_token}"]
    if parallel:
        argv += ["--parallel", "--parallel-max", str(parallel)]
    for (table, part, _), output in zip(files, _outputs(files, target), strict=True):
        query = f"?part={part}" if part else ""
        url = f"{server.base_url}/api/data/{table}/download{query}"
        argv += ["-o", str(output), url]
    return argv


def _outputs(files: list[tuple[str, str, int]], target: Path) -> list[Path]:
    return [target / f"{n}.parquet" for n in range(len(files))]


def _cold(root: Path, quick: bool) -> list[Result]:
    count = 10 if quick else 50
    rows = (100 if quick else 1000) * 1024 * 1024 // count // ROW_BYTES
    rounds = 3 if quick else 11  # the VM swings: a median of 7 moved by +-0.1 s
    jobs = default_jobs()
    with _serve(root, 1, count, rows, NOISE) as server:
        env = _env(server, root / "config")
        files = _manifest_files(server)
        total = sum(size for _, _, size in files)
        targets = [f"{table}|{part}" for table, part, _ in files]
        curl = shutil.which("curl")
        arms: dict[str, Callable[[Path], list[str]]] = {
            "pull": lambda target: _pull(target, env),
            "raw": lambda target: [
                sys.executable,
                "-c",
                RAW_HTTPX,
                server.base_url,
                server.admin_token,
                str(target),
                *targets,
            ],
        }
        if curl:
            arms["curl"] = lambda target: _curl_argv(curl, server, files, target)
            if _curl_parallel(curl):
                arms["curl --parallel"] = lambda target: _curl_argv(
                    curl, server, files, target, parallel=jobs
                )
                sync = shutil.which("sync")
                if sync:  # the same download made durable, as the pull makes it
                    arms["curl --parallel + sync"] = lambda target: [
                        "sh",
                        "-c",
                        shlex.join(_curl_argv(curl, server, files, target, parallel=jobs))
                        + " && "
                        + shlex.join([sync, "--", *(str(p) for p in _outputs(files, target))]),
                    ]
        walls: dict[str, list[float]] = {name: [] for name in arms}
        names = list(arms)
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate the order
                target = root / f"{name.replace(' ', '')}{i}"
                if name != "pull":
                    target.mkdir()  # the pull's is made by _pull
                walls[name].append(_wall(arms[name](target), env))
                shutil.rmtree(target)
    mb = total / 1e6
    pull = statistics.median(walls["pull"])
    spread = f"pull {min(walls['pull']):.2f}-{max(walls['pull']):.2f} s"
    baselines = {
        "raw": "raw httpx streaming download, same files, one connection",
        "curl": "curl, same files, one connection",
        "curl --parallel": f"curl --parallel --parallel-max {jobs} (the pull's connections)",
        "curl --parallel + sync": f"curl --parallel --parallel-max {jobs}, then `sync` of the "
        "files (coreutils: an fsync each), durable as the pull's files are",
    }
    results = []
    for name, label in baselines.items():
        if name not in walls:
            continue
        wall = statistics.median(walls[name])
        results.append(
            Result(
                f"agnes pull, cold, {count} files / {mb:,.0f} MB (throughput)",
                mb / pull,
                "MB/s",
                label,
                mb / wall,
                ">= 0.9x (old system: 0.30x)" if name == "raw" else ">= 0.9x",
                note=f"median of {rounds} interleaved rounds; pull {pull:.2f} s vs {wall:.2f} s "
                f"({spread}); pull verifies BLAKE3, fsyncs and renames every file, and "
                "builds the DuckDB views",
            )
        )
    return results


def _unchanged(root: Path, quick: bool) -> list[Result]:
    runs = 5 if quick else 15
    with _serve(root, 10, 100, 100, "SELECT range AS id FROM range({rows})") as server:
        env = _env(server, root / "config")
        workspace = root / "ws"
        _wall(_pull(workspace, env), env)
        check = subprocess.run(
            [*_pull(workspace, env)[:-1], "--json"], env=env, capture_output=True, text=True
        )
        summary = json.loads(check.stdout)
        assert summary["tables"] == 1000 and summary["downloaded"] == 0, summary
        _wall(_pull(workspace, env), env)
        pulls = [_wall(_pull(workspace, env), env) for _ in range(runs)]
        changed = []
        for run in range(runs):  # 10 tables' files gone: fetched again, the views remade
            for table in range(10):
                (workspace / ".agnes" / "data" / f"t{run % 10:04d}_{table:03d}.parquet").unlink()
            changed.append(_wall(_pull(workspace, env), env))
        bare = (
            "import sys, httpx; httpx.get(sys.argv[1] + '/api/sync/manifest', "
            "headers={'Authorization': 'Bearer ' + sys.argv[2]}).raise_for_status()"
        )
        gets = [
            _wall([sys.executable, "-c", bare, server.base_url, server.admin_token], env)
            for _ in range(runs)
        ]
    return [
        Result(
            "agnes pull, nothing changed, 1,000 tables (p50 wall)",
            median(pulls) * 1000,
            "ms",
            "python: import httpx + GET the same manifest",
            median(gets) * 1000,
            "<= 300 ms (old system: 3.7 s)",
            note=f"p90 {statistics.quantiles(pulls, n=10)[-1] * 1000:.0f} ms",
        ),
        Result(
            "agnes pull, 10 of 1,000 tables changed (p50 wall)",
            median(changed) * 1000,
            "ms",
            "agnes pull, nothing changed, same workspace (p50 wall)",
            median(pulls) * 1000,
            "report (830 ms when every view was made again, same machine)",
            note="10 files fetched and the workspace's DuckDB file brought up to date "
            f"(its views of the other 990 tables kept); p90 "
            f"{statistics.quantiles(changed, n=10)[-1] * 1000:.0f} ms",
        ),
    ]


def _peak_rss(root: Path, quick: bool) -> list[Result]:
    size = (256 if quick else 2048) * 1024 * 1024
    with _serve(root, 1, 1, size // ROW_BYTES, NOISE) as server:
        env = _env(server, root / "config")
        (table, part, got), *_ = _manifest_files(server)
        measure = [sys.executable, "-c", PEAK_RSS]
        pull = subprocess.run(
            [*measure, *_pull(root / "ws", env)], env=env, capture_output=True, text=True
        )
        target = root / "raw"
        target.mkdir()
        raw = subprocess.run(
            [
                *measure,
                sys.executable,
                "-c",
                RAW_HTTPX,
                server.base_url,
                server.admin_token,
                str(target),
                f"{table}|{part}",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    pull_mb, raw_mb = int(pull.stdout) / 1024, int(raw.stdout) / 1024
    return [
        Result(
            f"agnes pull of one {got / 1e9:.1f} GB file: peak RSS",
            pull_mb,
            "MB",
            "raw httpx streaming download of the file",
            raw_mb,
            "<= 150 MB",
        )
    ]


def run(quick: bool = False) -> list[Result]:
    compile_bytecode()
    results = []
    for case in (_cold, _unchanged, _peak_rss):
        with tempfile.TemporaryDirectory() as tmp:
            results.extend(case(Path(tmp), quick))
    return results
