"""``benchmarks/README.md`` is written by the benchmark command: every figure of each
suite's latest run, the machine and the command; a run of one suite keeps the others."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import report
from benchmarks.harness import Result


def _figures(name: str, value: float, baseline: float) -> list[dict[str, object]]:
    row = Result(name, value, "ms", "python -c pass", baseline, "< 70 ms", note="p50 | wall")
    return [row.as_dict()]


def test_every_figure_the_machine_and_the_command(tmp_path: Path) -> None:
    readme = report.publish(
        {"cli": _figures("agnes --help", 42.0, 14.0), "pull": _figures("agnes pull", 1.5, 0.0)},
        "2026-01-02T03:04:05+0000",
        ["--only", "cli"],
        ["cli", "pull"],
        tmp_path,
    )
    text = readme.read_text()
    box = report.machine()
    assert f"{box['cores']} cores" in text and f"DuckDB {box['duckdb']}" in text
    assert f"Python {box['python']}" in text and box["cpu"] in text
    assert "`uv run python benchmarks/run.py --only cli` at 2026-01-02T03:04:05+0000" in text
    row = next(line for line in text.splitlines() if line.startswith("| agnes --help"))
    assert row.split(" | ")[1:6] == ["42.0 ms", "python -c pass", "14.0 ms", "3.00x", "< 70 ms"]
    assert "p50 \\| wall" in row  # a cell's own | does not break the table
    assert "| n/a |" in next(line for line in text.splitlines() if line.startswith("| agnes pull"))
    assert text.index("## cli") < text.index("## pull")


def test_one_suite_replaces_its_figures_and_keeps_the_others(tmp_path: Path) -> None:
    order = ["cli", "pull"]
    report.publish({"cli": _figures("agnes --help", 42.0, 14.0)}, "T1", [], order, tmp_path)
    report.publish(
        {"pull": _figures("agnes pull", 900.0, 1000.0)}, "T2", ["--only", "pull"], order, tmp_path
    )
    report.publish(
        {"pull": _figures("agnes pull", 950.0, 1000.0)}, "T3", ["--only", "pull"], order, tmp_path
    )
    kept = json.loads((tmp_path / "figures.json").read_text())["suites"]
    assert kept["cli"]["at"] == "T1" and kept["pull"]["at"] == "T3"
    assert kept["pull"]["results"][0]["value"] == 950.0
    text = (tmp_path / "README.md").read_text()
    assert "| agnes --help |" in text and "| 950 ms |" in text and "| 900 ms |" not in text
    assert "`uv run python benchmarks/run.py` at T1" in text
