"""Docs that fall out of date fail here: settings, CLI commands, API routes, README commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pydantic import BaseModel

from agnes_mcp.settings import AgnesSettings
from cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]


def settings_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        keys.append(prefix + name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(settings_keys(annotation, prefix + name + "."))
    return keys


def test_every_setting_is_documented_with_its_env_var() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    for key in settings_keys(AgnesSettings):
        assert f"`{key}`" in text, f"setting {key} is not in docs/configuration.md"
        if key != "sources":
            env = "AGNES_" + key.upper().replace(".", "__")
            assert f"`{env}`" in text, f"{env} is not in docs/configuration.md"
    for key in ("connector", "description", "options"):
        assert f"`sources.<name>.{key}`" in text


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "agnes") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(leaf_commands(sub, f"{prefix} {name}"))
    return found or [prefix]


def test_every_cli_command_is_documented() -> None:
    text = (REPO / "docs" / "cli.md").read_text()
    commands = leaf_commands(build_parser())
    assert len(commands) >= 15  # the walk found the tree
    for command in commands:
        assert f"`{command}" in text, f"'{command}' is not in docs/cli.md"


def test_every_api_route_is_documented(live_server) -> None:
    import httpx

    spec = httpx.get(f"{live_server.base_url}/api/openapi.json").json()
    text = (REPO / "docs" / "api.md").read_text()
    for path in spec["paths"]:
        static = path.split("{", 1)[0].rstrip("/")
        assert static in text, f"route {path} is not in docs/api.md"


def test_readme_starts_with_the_two_commands() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    head = "\n".join(lines[:12])
    block = re.search(r"```sh\n(.*?)```", head, re.S)
    assert block, "the README's first screen has a shell block"
    commands = [line.split("#")[0].strip() for line in block[1].splitlines() if line.strip()]
    assert commands == ["uv run agnes demo", "uv run pytest"]
    assert "pip install uv" in head


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "uv run ruff check ." in ci and "uv run pytest" in ci


def test_changelog_has_an_unreleased_section() -> None:
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text()


def test_the_metric_definition_example_imports() -> None:
    """docs/metrics.md's example read as a definition: its sql_by_segment reads customers,
    which the metric did not list, and the import refused it."""
    from agnes_mcp.metrics.loader import load_texts

    text = (REPO / "docs" / "metrics.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert example is not None
    (metric,) = load_texts({"example.yml": example.group(1)})
    assert metric.id == "revenue/total_revenue" and "customers" in metric.tables
