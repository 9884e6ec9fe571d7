"""Reading metric definitions from YAML files, reporting every problem with file and key.

A file holds one metric (a mapping), a list of them, or ``metrics: [...]``. Nothing is
accepted unless every file is valid and every id is unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agnes_mcp.config_file import Loc, parse_yaml
from agnes_mcp.errors import ConfigError, InvalidRequest
from agnes_mcp.metrics.definition import MetricDefinition


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class MetricsInvalid(InvalidRequest):
    code = "metrics_invalid"
    status = 422
    default_hint = "Fix every problem listed, then import again; nothing was changed."

    def __init__(self, problems: list[Problem]) -> None:
        shown = "; ".join(str(p) for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(
            f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'} in the metric "
            f"definitions: {shown}{more}",
            details={"problems": [p.__dict__ for p in problems]},
        )
        self.problems = problems


def _items(data: Any) -> list[tuple[Loc, Any]]:
    if isinstance(data, dict) and set(data) == {"metrics"}:
        data = data["metrics"]
        prefix: Loc = ("metrics",)
    else:
        prefix = ()
    if isinstance(data, list):
        return [((*prefix, i), item) for i, item in enumerate(data)]
    return [(prefix, data)]


def parse_definitions(
    data: Any, file: str, lines: dict[Loc, int] | None = None
) -> tuple[list[MetricDefinition], list[Problem]]:
    """Definitions in ``data`` (one file's content), and the problems found in it."""
    lines = lines or {}
    found: list[MetricDefinition] = []
    problems: list[Problem] = []
    for loc, item in _items(data):
        if not isinstance(item, dict):
            problems.append(Problem(file, lines.get(loc), _dotted(loc), "must be a mapping"))
            continue
        try:
            found.append(MetricDefinition.model_validate(item, context={"importing": True}))
        except ValidationError as exc:
            for error in exc.errors():
                where = (*loc, *error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                line = next(
                    (lines[where[:n]] for n in range(len(where), 0, -1) if where[:n] in lines),
                    None,
                )
                label = item.get("name") if isinstance(item.get("name"), str) else None
                key = _dotted(where) + (f" (metric '{label}')" if label else "")
                problems.append(Problem(file, line, key, message))
    return found, problems


def load_texts(files: dict[str, str]) -> list[MetricDefinition]:
    """Every definition in ``files`` (name -> YAML text), or MetricsInvalid listing every
    problem with its file, line and key."""
    if not files:
        raise MetricsInvalid([Problem("", None, "", "no files were given")])
    definitions: list[MetricDefinition] = []
    origins: list[str] = []  # the file of each definition
    problems: list[Problem] = []
    for name, text in sorted(files.items()):
        try:
            data, lines = parse_yaml(text, name)
        except ConfigError as exc:
            problems.append(Problem(name, None, "", exc.message.replace("Config file ", "")))
            continue
        found, wrong = parse_definitions(data, name, lines)
        definitions.extend(found)
        origins.extend(name for _ in found)
        problems.extend(wrong)
    problems.extend(duplicates(definitions, origins))
    if problems:
        raise MetricsInvalid(problems)
    return definitions


def read_directory(root: Path) -> dict[str, str]:
    """The ``*.yml``/``*.yaml`` files under ``root``: relative name -> text (see
    :func:`decode_files`)."""
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return decode_files({str(p.relative_to(root)): p.read_bytes() for p in files})


def decode_files(files: dict[str, bytes]) -> dict[str, str]:
    """Name -> the file's text, or MetricsInvalid naming every file that is not UTF-8 (a
    file saved as UTF-16, or not text at all), each with the first byte that is not."""
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for name, data in files.items():
        try:
            texts[name] = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            problems.append(
                Problem(
                    name,
                    None,
                    "",
                    f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                    "save it as UTF-8",
                )
            )
    if problems:
        raise MetricsInvalid(problems)
    return texts


def duplicates(definitions: list[MetricDefinition], files: list[str]) -> list[Problem]:
    """An id defined again, named with the file of each definition (``files[i]`` holds
    ``definitions[i]``)."""
    first: dict[str, str] = {}
    problems = []
    for metric, file in zip(definitions, files, strict=True):
        if metric.id in first:
            where = "in this file" if first[metric.id] == file else f"in {first[metric.id]}"
            problems.append(Problem(file, None, metric.id, f"is defined twice (also {where})"))
        first.setdefault(metric.id, file)
    return problems


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)
