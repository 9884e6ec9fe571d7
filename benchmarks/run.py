"""Run every benchmark and print ratios against their same-run baselines; write them to
``benchmarks/results/latest.json`` and publish them in ``benchmarks/README.md``.

uv run python benchmarks/run.py [--quick] [--full] [--only NAME] [--no-publish]

Each suite runs in a Python process of its own: what one suite leaves in its process
(threads, caches, a heap grown by its data) would otherwise slow the next one down, and
measure that instead of what it names (the in-process MCP figures ran ~1.6x slower after
the query suite than alone).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (
    admin,
    bench_auth,
    bench_cli_startup,
    bench_demo,
    bench_extract,
    bench_fairness,
    bench_fleet,
    bench_mcp,
    bench_mcp_tools,
    bench_pull,
    bench_query,
    bench_rebuild,
    jira,
    keboola,
    marketplace,
    notebook,
    oauth,
    report,
)
from benchmarks.harness import Result

SUITES = {
    "cli": bench_cli_startup.run,
    "auth": bench_auth.run,
    "mcp": bench_mcp.run,
    "extract": bench_extract.run,
    "rebuild": bench_rebuild.run,
    "query": bench_query.run,
    "mcp_tools": bench_mcp_tools.run,
    "pull": bench_pull.run,
    "fairness": bench_fairness.run,
    "fleet": bench_fleet.run,
    "admin": admin.run,
    "oauth": oauth.run,
    "notebook": notebook.run,
    "keboola": keboola.run,
    "jira": jira.run,
    "marketplace": marketplace.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--full", action="store_true", help="also generate the full-scale demo")
    parser.add_argument("--only", choices=[*SUITES, "demo"], help="run one suite")
    parser.add_argument(
        "--no-publish", action="store_true", help="leave benchmarks/README.md as it is"
    )
    parser.add_argument("--suite-to", type=Path, help=argparse.SUPPRESS)  # a child's output
    args = parser.parse_args()
    if args.suite_to is not None:  # a child: run the one suite here, write its figures
        if args.only is None:
            parser.error("--suite-to runs one suite: name it with --only")
        found = _run_here(args.only, quick=args.quick, full=args.full)
        args.suite_to.write_text(json.dumps([asdict(r) for r in found]))
        return 0

    by_suite: dict[str, list[Result]] = {}
    failed: list[str] = []
    for name in [*SUITES, "demo"]:
        if args.only in (None, name):
            try:
                by_suite[name] = _run_apart(name, quick=args.quick, full=args.full)
            except subprocess.CalledProcessError as exc:  # the others' figures still count
                failed.append(name)
                print(
                    f"suite {name} failed (exit {exc.returncode}): its figures of an "
                    "earlier run are kept",
                    file=sys.stderr,
                )
    results = [r for suite_results in by_suite.values() for r in suite_results]
    if not results:
        return 1

    width = max(len(r.name) for r in results)
    print(f"\n{'benchmark'.ljust(width)}  {'value':>10}  {'baseline':>10}  {'ratio':>7}  target")
    for r in results:
        print(
            f"{r.name.ljust(width)}  {r.value:>8.2f}{r.unit:>2}  {r.baseline:>8.2f}{r.unit:>2}  "
            f"{r.ratio:>6.2f}x  {r.target}"
        )
        print(f"{'':{width}}  vs {r.baseline_name}" + (f"; {r.note}" if r.note else ""))
    at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = Path(__file__).parent / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "at": at,
                "machine": f"{platform.machine()} {platform.python_version()}",
                "results": [r.as_dict() for r in results],
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out}")
    if not args.no_publish:
        figures = {name: [r.as_dict() for r in rs] for name, rs in by_suite.items()}
        argv = [a for a in sys.argv[1:] if a != "--no-publish"]
        readme = report.publish(figures, at, argv, [*SUITES, "demo"])
        print(f"published in {readme}")
    if failed:
        print(f"failed suites: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _run_here(name: str, *, quick: bool, full: bool) -> list[Result]:
    if name == "demo":
        return bench_demo.run(quick=quick, full=full)
    return SUITES[name](quick=quick)


def _run_apart(name: str, *, quick: bool, full: bool) -> list[Result]:
    """Suite ``name`` run by a fresh interpreter; its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        flags = [flag for flag, on in (("--quick", quick), ("--full", full)) if on]
        subprocess.run(
            [sys.executable, __file__, "--only", name, "--suite-to", str(out), *flags],
            check=True,
        )
        return [Result(**fields) for fields in json.loads(out.read_text())]


if __name__ == "__main__":
    raise SystemExit(main())
