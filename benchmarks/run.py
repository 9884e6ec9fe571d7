"""Run every benchmark and print ratios against their same-run baselines; write them to
``benchmarks/results/latest.json`` and publish them in ``benchmarks/README.md``.

uv run python benchmarks/run.py [--quick] [--full] [--only NAME] [--no-publish]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
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
    args = parser.parse_args()

    by_suite: dict[str, list[Result]] = {}
    for name, suite in SUITES.items():
        if args.only in (None, name):
            by_suite[name] = suite(quick=args.quick)
    if args.only in (None, "demo"):
        by_suite["demo"] = bench_demo.run(quick=args.quick, full=args.full)
    results = [r for suite_results in by_suite.values() for r in suite_results]

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
