"""Claude Code's marketplace format as Agnes accepts it from an upstream repository.

``.claude-plugin/marketplace.json``: an object with ``name`` (string), optional ``owner``
and ``metadata`` (``metadata.pluginRoot``: a folder prepended to every plugin source) and
``plugins``: a list of entries, each an object with ``name`` and ``source``. Agnes serves
plugins that live in the repository itself, so ``source`` must be a relative folder path
(``./plugins/x`` or ``plugins/x``): sources naming other repositories (objects, URLs) are
refused, as are absolute paths, ``..`` and backslashes. Each plugin folder holds
``.claude-plugin/plugin.json``, an object whose ``name`` is kebab-case-like. Every
refusal names the file and says what to change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agnes_mcp.errors import MarketplaceRepoInvalid

MARKETPLACE_JSON = ".claude-plugin/marketplace.json"
PLUGIN_JSON = ".claude-plugin/plugin.json"
MAX_NESTING = 64  # arrays and objects inside each other (a hooks config needs a handful)
PLUGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_URL_LIKE = re.compile(r"^([a-z][a-z0-9+.-]*:|git@)", re.IGNORECASE)
_FORMAT_HINT = (
    "See Claude Code's marketplace format: .claude-plugin/marketplace.json lists plugins "
    'as {"name": ..., "source": "./plugins/<folder>"}.'
)


@dataclass(frozen=True)
class PluginEntry:
    """One ``plugins[]`` entry: where its folder is and its other fields."""

    index: int
    name: str
    source_path: str  # normalized folder in the repository ('' for the root)
    extra: dict[str, Any]  # the entry minus name and source


@dataclass(frozen=True)
class MarketplaceDocument:
    name: str
    plugins: list[PluginEntry]


def parse_json(path: str, data: bytes) -> Any:
    """The JSON document in ``data``; an error naming ``path`` and the line if it is not."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MarketplaceRepoInvalid(
            f"{path} is not UTF-8 text (byte {exc.start}).", hint="Save it as UTF-8 JSON."
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MarketplaceRepoInvalid(
            f"{path} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}.",
            hint=f"Fix the JSON in {path} (e.g. check it with 'python -m json.tool').",
        ) from None
    except RecursionError:  # thousands of [ or {: the sync failed "unexpectedly"
        document = None
        deep = True
    else:
        deep = _nested_deeper(document, MAX_NESTING)
    if deep:
        # A document that only just parses here could fail wherever it is read or
        # written again (the feed, the admin API), from a deeper stack.
        raise MarketplaceRepoInvalid(
            f"{path} nests arrays or objects more than {MAX_NESTING} deep.",
            hint=f"Flatten the JSON in {path}.",
        )
    return document


def _nested_deeper(document: Any, limit: int) -> bool:
    """Whether ``document`` nests lists or dicts more than ``limit`` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_marketplace(data: bytes, *, max_plugins: int) -> MarketplaceDocument:
    """Check ``.claude-plugin/marketplace.json`` and list its plugin entries."""
    document = parse_json(MARKETPLACE_JSON, data)
    if not isinstance(document, dict):
        raise _invalid(MARKETPLACE_JSON, "is not a JSON object")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid(MARKETPLACE_JSON, "has no 'name' (a string)")
    plugins = document.get("plugins")
    if not isinstance(plugins, list):
        raise _invalid(MARKETPLACE_JSON, "has no 'plugins' list")
    if len(plugins) > max_plugins:
        raise MarketplaceRepoInvalid(
            f"{MARKETPLACE_JSON} lists {len(plugins)} plugins; this server takes at most "
            f"{max_plugins} from one marketplace.",
            hint="Split the marketplace, or raise the setting marketplace.max_plugins.",
        )
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _invalid(MARKETPLACE_JSON, "has a 'metadata' that is not an object")
    root_text = metadata.get("pluginRoot", "")
    if not isinstance(root_text, str):
        raise _invalid(MARKETPLACE_JSON, "has a 'metadata.pluginRoot' that is not a string")
    plugin_root = repo_folder(root_text, f"{MARKETPLACE_JSON} metadata.pluginRoot")
    entries = [_entry(index, item, plugin_root) for index, item in enumerate(plugins)]
    return MarketplaceDocument(name=name.strip(), plugins=entries)


def parse_manifest(path: str, data: bytes) -> dict[str, Any]:
    """Check a plugin's ``.claude-plugin/plugin.json`` (``path`` names it in the repository)."""
    manifest = parse_json(path, data)
    if not isinstance(manifest, dict):
        raise _invalid(path, "is not a JSON object")
    name = manifest.get("name")
    if not isinstance(name, str) or not PLUGIN_NAME.match(name):
        raise MarketplaceRepoInvalid(
            f"{path} has no usable 'name' ({json.dumps(name)[:60]}): a plugin name is "
            "lowercase letters, digits, '-', '_' and '.', starting with a letter or digit.",
            hint=f'Give the plugin a kebab-case name in {path}, e.g. "sql-review".',
        )
    return manifest


def repo_folder(text: str, where: str) -> str:
    """A relative folder path normalized ('./a/b/' → 'a/b', './' → ''), or an error."""
    if "\\" in text:
        raise MarketplaceRepoInvalid(
            f"{where} '{text}' holds a backslash.", hint="Use '/' between folder names."
        )
    if text.startswith("/"):
        raise MarketplaceRepoInvalid(
            f"{where} '{text}' is an absolute path.",
            hint="Give a path relative to the repository root, e.g. './plugins/sql-review'.",
        )
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise MarketplaceRepoInvalid(
            f"{where} '{text}' holds '..': plugins must stay inside the repository.",
            hint="Give a folder inside the repository, e.g. './plugins/sql-review'.",
        )
    return "/".join(parts)


def _entry(index: int, item: Any, plugin_root: str) -> PluginEntry:
    where = f"{MARKETPLACE_JSON} plugins[{index}]"
    if not isinstance(item, dict):
        raise _invalid(where, "is not an object")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid(where, "has no 'name' (a string)")
    where = f"{MARKETPLACE_JSON} plugin '{name}'"
    source = item.get("source")
    if isinstance(source, dict) or (isinstance(source, str) and _URL_LIKE.match(source)):
        raise MarketplaceRepoInvalid(
            f"{where} takes its source from elsewhere ({json.dumps(source)[:120]}); this "
            "server serves only plugins inside the marketplace repository.",
            hint="Copy the plugin into the repository and give its folder as source, e.g. "
            "'./plugins/<name>', or register its repository as a marketplace of its own.",
        )
    if not isinstance(source, str):
        raise _invalid(where, "has no 'source' (a folder path string)")
    folder = repo_folder(source, f"{where} source")
    joined = "/".join(part for part in (plugin_root, folder) if part)
    extra = {key: value for key, value in item.items() if key not in ("name", "source")}
    return PluginEntry(index=index, name=name, source_path=joined, extra=extra)


def _invalid(where: str, what: str) -> MarketplaceRepoInvalid:
    return MarketplaceRepoInvalid(f"{where} {what}.", hint=_FORMAT_HINT)
