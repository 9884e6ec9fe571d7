"""The published figures: ``benchmarks/README.md``, written by ``benchmarks/run.py``.

Each suite's last run is kept in ``benchmarks/figures.json`` (committed, beside the
README): its results, when it ran, on which machine and with which command. A run of one
suite (``--only pull``) replaces that suite's figures and keeps the others; the README is
rendered again from the whole file, so it always shows every suite's latest figures and
says how each was produced.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PUBLISHED = ("README.md", "figures.json")  # what a run writes here, beside the code


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    if match:
        return match[1].strip()
    if sys.platform == "darwin":
        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def _commit() -> str:
    """The code measured: the commit, ``+changes`` when the tree differs from it (the
    figures a run publishes are not code: one suite's publishing does not mark the
    next suite's run as changed)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":(top)",
                *(f":(top,exclude)benchmarks/{name}" for name in PUBLISHED),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" +changes" if dirty else "")


def machine() -> dict[str, Any]:
    import duckdb

    ram = _ram_gib()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram": f"{ram:.1f} GiB" if ram else "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "arch": platform.machine(),
    }


def command(argv: list[str]) -> str:
    return " ".join(["uv run python benchmarks/run.py", *argv])


def record(
    figures: Path, suites: dict[str, list[dict[str, Any]]], at: str, argv: list[str]
) -> dict[str, Any]:
    """Merge this run's suites into the kept figures (and return them all)."""
    try:
        kept: dict[str, Any] = json.loads(figures.read_text())
    except (OSError, ValueError):
        kept = {}
    entries = kept.setdefault("suites", {})
    run = {"at": at, "command": command(argv), "machine": machine(), "commit": _commit()}
    for name, results in suites.items():
        entries[name] = {**run, "results": results}
    figures.write_text(json.dumps(kept, indent=2) + "\n")
    return kept


def _number(value: float) -> str:
    if value != value:  # NaN: no baseline
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}x"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _machine_line(box: dict[str, Any]) -> str:
    return (
        f"{box['cpu']}, {box['cores']} cores, {box['ram']} RAM; {box['os']}; "
        f"Python {box['python']}; DuckDB {box['duckdb']}"
    )


def _table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| benchmark | value | baseline | baseline value | ratio | target | note |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for r in results:
        unit = r["unit"]
        lines.append(
            f"| {_cell(r['name'])} | {_number(r['value'])} {unit} | {_cell(r['baseline_name'])} "
            f"| {_number(r['baseline'])} {unit} | {_ratio(r['ratio'])} | {_cell(r['target'])} "
            f"| {_cell(r.get('note') or '')} |"
        )
    return lines


def render(kept: dict[str, Any], order: list[str]) -> str:
    suites: dict[str, Any] = kept.get("suites", {})
    names = [n for n in order if n in suites] + sorted(set(suites) - set(order))
    machines = {json.dumps(suites[n]["machine"], sort_keys=True) for n in names}
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/run.py` (do not edit by hand): every figure of each suite's "
        "latest run, the machine it ran on and the command that produced it. Each figure is a "
        "ratio against a baseline measured in the same run, on the same machine, interleaved "
        "with it; absolute numbers move with the machine, the ratios much less.",
        "",
        "Reproduce everything with `uv run python benchmarks/run.py` (add `--quick` for fewer "
        "iterations, `--only <suite>` for one suite). The raw figures of the last run are in "
        "`benchmarks/results/latest.json` (not committed); every suite's figures are kept in "
        "`benchmarks/figures.json`.",
        "",
    ]
    if len(machines) == 1 and names:
        lines += ["## Machine", "", _machine_line(suites[names[0]]["machine"]), ""]
    lines += ["## Suites", ""]
    lines += [
        f"- [{n}](#{n}): {len(suites[n]['results'])} figures, {suites[n]['at']}" for n in names
    ]
    for name in names:
        suite = suites[name]
        lines += [
            "",
            f"## {name}",
            "",
            f"`{suite['command']}` at {suite['at']}, code {suite['commit']}"
            + ("" if len(machines) == 1 else f"; {_machine_line(suite['machine'])}"),
            "",
            *_table(suite["results"]),
        ]
    return "\n".join(lines) + "\n"


def publish(
    suites: dict[str, list[dict[str, Any]]],
    at: str,
    argv: list[str],
    order: list[str],
    folder: Path = HERE,
) -> Path:
    """Keep this run's figures in ``folder/figures.json``; write ``folder/README.md``."""
    readme = folder / "README.md"
    readme.write_text(render(record(folder / "figures.json", suites, at, argv), order))
    return readme
