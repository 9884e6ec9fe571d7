"""Reading ``instance.yaml`` and turning validation failures into precise messages.

A config error names where the bad value came from (file and line, environment
variable, or command-line option), the dotted key, what is wrong and a fix.
"""

from __future__ import annotations

import logging
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agnes_mcp.errors import ConfigError
from agnes_sync.env_names import is_env_name
from agnes_sync.suggest import suggestions

logger = logging.getLogger("agnes.settings")

Loc = tuple[str | int, ...]
MAX_KEYS = 10_000


@dataclass(frozen=True)
class ConfigFile:
    """A parsed YAML config file and the line of every key in it."""

    path: Path
    data: dict[str, Any]
    lines: dict[Loc, int] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path, model: type[BaseModel]) -> ConfigFile:
        data, lines = load_yaml(path)
        if data is None:
            return cls(path=path, data={})
        if not isinstance(data, dict):
            raise ConfigError(
                f"Config file {path} must hold a mapping of settings, not a {type(data).__name__}.",
                hint="Start from config/instance.yaml.example.",
            )
        return cls(path=path, data=data, lines=lines)

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest key of ``loc`` that the file holds."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def holds(self, loc: Loc) -> bool:
        return bool(loc) and loc[:1] in self.lines


def load_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """A YAML file's data and the line of every key and list item, or a ConfigError naming
    the file (and line) for unreadable files, bad YAML, odd or repeated keys, cyclic anchors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist.",
            hint="Pass an existing file with --config or AGNES_CONFIG, or remove the setting.",
        ) from None
    except IsADirectoryError:  # "check the file's permissions" would not help
        raise ConfigError(
            f"Config file {path} is a folder.",
            hint="Pass the instance.yaml file itself with --config or AGNES_CONFIG "
            f"(e.g. {path / 'instance.yaml'}).",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Config file {path} cannot be read: {exc.strerror}.",
            hint="Check the file's permissions.",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not UTF-8 text "
            f"(byte {exc.start} is {exc.object[exc.start]:#x}).",
            hint="Save the file as UTF-8.",
        ) from None
    return parse_yaml(text, path)


class _Loader(yaml.SafeLoader):
    """YAML's safe loader whose values that do not read as their type (an unquoted
    ``2020-13-45`` taken for a date, ``!!int abc``) fail as a marked YAML error, naming
    the line, like every other YAML problem (PyYAML raises a bare ``ValueError``)."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]} ({exc}); "
                "quote it to keep it as text",
                node.start_mark,
            ) from None


def parse_yaml(text: str, path: Path | str) -> tuple[Any, dict[Loc, int]]:
    """YAML ``text`` (from ``path``, named in errors) and the line of every key and item."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"Config file {path}{where} is not valid YAML: {exc.problem}.",
            hint="Fix the YAML syntax (indentation, quotes, colons) at that position.",
        ) from None
    except yaml.reader.ReaderError as exc:  # a control character: not a text file?
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"Config file {path}, line {line} is not valid YAML: it holds the character "
            f"#x{exc.character if isinstance(exc.character, int) else ord(exc.character):04x}, "
            "which YAML does not allow.",
            hint="Save it as plain UTF-8 text, without control characters.",
        ) from None
    except (yaml.YAMLError, RecursionError):
        raise ConfigError(
            f"Config file {path} is not valid YAML (an anchor that refers to itself?).",
            hint="Settings need no YAML anchors or aliases; write the values out.",
        ) from None
    lines: dict[Loc, int] = {}
    _collect_lines(node, (), lines, Path(path))  # refuses cyclic anchors, odd, repeated keys
    return data, lines


def _collect_lines(
    node: yaml.Node | None,
    prefix: Loc,
    out: dict[Loc, int],
    path: Path,
    inside: frozenset[int] = frozenset(),
) -> None:
    """Record each key's line; refuse keys that are not plain names or appear twice."""
    if node is not None and id(node) in inside:
        raise ConfigError(
            f"Config file {path}, line {node.start_mark.line + 1}: a YAML anchor refers to itself.",
            hint="Settings need no YAML anchors or aliases; write the values out.",
        )
    inside = inside | {id(node)}
    if len(out) > MAX_KEYS:
        raise ConfigError(
            f"Config file {path} expands to more than {MAX_KEYS} keys (aliases that multiply?).",
            hint="Write the settings out without YAML aliases.",
        )
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                shown = getattr(key_node, "value", "?")
                raise ConfigError(
                    f"Config file {path}, line {line}: key {shown!r} is not a name.",
                    hint="Keys are setting names such as 'port'; quote a key that YAML reads "
                    "as a number or boolean.",
                )
            key = key_node.value
            if (*prefix, key) in out:
                dotted = ".".join(str(p) for p in (*prefix, key))
                raise ConfigError(
                    f"Config file {path}, line {line}: key '{dotted}' is set twice "
                    f"(first on line {out[(*prefix, key)]}).",
                    hint="Keep one of the two.",
                )
            out[(*prefix, key)] = line
            _collect_lines(value_node, (*prefix, key), out, path, inside)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*prefix, index)] = item.start_mark.line + 1
            _collect_lines(item, (*prefix, index), out, path, inside)


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model whose fields are valid keys at ``loc`` (``None`` if not a model)."""
    current: Any = model
    index = 0
    while index < len(loc):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(str(loc[index]))
        if info is None:
            return None
        current = _unwrap(info.annotation)
        index += 1
        origin = typing.get_origin(current)
        if origin is dict:
            current = _unwrap(typing.get_args(current)[1])
            index += 1  # the dict key itself (e.g. a source name)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated wrappers to the model or container inside."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def _field_description(model: type[BaseModel], loc: Loc) -> str | None:
    parent = _model_at(model, loc[:-1])
    if parent is None:
        return None
    info = parent.model_fields.get(str(loc[-1]))
    return info.description if info else None


def _env_name(prefix: str, loc: Loc) -> str:
    return prefix + "__".join(str(part).upper() for part in loc)


def _source_of(loc: Loc, config: ConfigFile | None, given: dict[str, Any], prefix: str) -> str:
    top = str(loc[0]) if loc else ""
    if top in given:
        return f"command-line option --{top.replace('_', '-')}"
    for end in range(len(loc), 0, -1):
        name = _env_name(prefix, loc[:end])
        if name in os.environ:
            return f"environment variable {name}"
    if config is not None and config.holds(loc):
        line = config.line_of(loc)
        return f"{config.path}, line {line}" if line else str(config.path)
    return "default value"


# Errors whose message names what is wrong and whose value is not echoed (a connector's
# options, or a URL's user info, may hold a secret put there by mistake).
_VALUE_NOT_SHOWN = frozenset({"connector_options", "url_with_credentials"})
# A URL's user info in a value that is echoed (https://user:password@host...).
_USER_INFO = re.compile(r"(//)[^/@\s'\"]*@")


def _names_a_secret_variable(loc: Loc) -> bool:
    """Whether the key names the environment variable holding a secret (``*_env``,
    ``*_envs``): a value refused there is often the secret pasted in by mistake."""
    return any(isinstance(part, str) and part.endswith(("_env", "_envs")) for part in loc)


def describe_validation_errors(
    exc: ValidationError,
    model: type[BaseModel],
    config: ConfigFile | None,
    given: dict[str, Any],
    prefix: str,
) -> ConfigError:
    """One :class:`ConfigError` listing every problem with its source, key and fix."""
    problems: list[str] = []
    first_hint: str | None = None
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        key = ".".join(str(part) for part in loc)
        source = _source_of(loc, config, given, prefix)
        if error["type"] == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            valid = sorted(parent.model_fields) if parent else []
            close = suggestions(str(loc[-1]), valid)
            fix = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
            problems.append(f"{source}: unknown key '{key}'; {fix}")
        elif error["type"] in _VALUE_NOT_SHOWN:
            problems.append(f"{source}: key '{key}': {error['msg']}")
        elif _names_a_secret_variable(loc) and not is_env_name(error.get("input")):
            # not a variable's name: what is there may be the secret itself
            description = _field_description(model, loc)
            fix = f" ({description})" if description else ""
            problems.append(
                f"{source}: key '{key}' (value not shown: it should name an environment "
                f"variable, and may hold the secret itself): {error['msg']}{fix}"
            )
        else:
            shown = _USER_INFO.sub(r"\1***@", repr(error.get("input")))
            if len(shown) > 60:
                shown = shown[:57] + "..."
            description = _field_description(model, loc)
            fix = f" ({description})" if description else ""
            problems.append(f"{source}: key '{key}' = {shown}: {error['msg']}{fix}")
        if first_hint is None:
            first_hint = (
                "Fix the key named above; every setting is listed in docs/configuration.md."
            )
    message = "Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems)
    return ConfigError(message, hint=first_hint, details={"problems": problems})


def warn_unknown_env(model: type[BaseModel], prefix: str, ignore: frozenset[str]) -> list[str]:
    """Log (and return) ``AGNES_*`` variables that match no setting, with a suggestion."""
    known = sorted(model.model_fields)
    warnings: list[str] = []
    for name in os.environ:
        if not name.startswith(prefix) or name in ignore:
            continue
        top = name[len(prefix) :].split("__", 1)[0].lower()
        if top in known:
            continue
        close = suggestions(top, known)
        suggestion = f"did you mean {prefix}{close[0].upper()}?" if close else "it is ignored"
        text = f"environment variable {name} matches no setting; {suggestion}"
        logger.warning(text)
        warnings.append(text)
    return warnings
