"""Checking one commit of a marketplace repository before anything of it is served.

Reads ``.claude-plugin/marketplace.json``, then for every plugin it lists: the folder,
its ``.claude-plugin/plugin.json`` and every file inside it. Regular files are served;
a symbolic link is served as a copy of the file it points at inside the repository;
submodules, links leaving the repository or pointing at folders, names an analyst's
Windows or macOS machine cannot check out (:mod:`.portable_paths`), a plugin folder inside
another's (whoever is granted the outer one would get the inner one's files too), files
over ``marketplace.max_file_bytes``, plugins over ``marketplace.max_plugin_bytes``, Git
LFS pointers and ``plugin.json`` component paths missing from the commit refuse the whole
commit, with a message naming the file. Only sizes, files under 1 KiB (an LFS pointer is
one) and the JSON files are read here; the plugin files are read when they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agnes_mcp.errors import MarketplaceRepoInvalid
from agnes_mcp.marketplace.marketplace_format import (
    MARKETPLACE_JSON,
    PLUGIN_JSON,
    PluginEntry,
    parse_manifest,
    parse_marketplace,
)
from agnes_mcp.marketplace.portable_paths import case_clash, unportable
from agnes_mcp.marketplace.repo_reader import RepoReader, TreeEntry
from agnes_mcp.settings import MarketplaceSettings
from agnes_sync.human_size import human_size


@dataclass(frozen=True)
class PluginFile:
    rel: str  # path inside the plugin folder
    blob: TreeEntry  # the regular file whose bytes are served (a link's target for a link)


@dataclass(frozen=True)
class CheckedPlugin:
    name: str
    version: str | None
    description: str | None
    source_path: str
    manifest: dict[str, Any]
    entry: dict[str, Any]
    files: tuple[PluginFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.blob.size for f in self.files)


@dataclass(frozen=True)
class CheckedMarketplace:
    upstream_name: str
    plugins: list[CheckedPlugin]


def check_repository(repo: RepoReader, limits: MarketplaceSettings) -> CheckedMarketplace:
    """The plugins of ``repo``'s commit, or an error naming the first file that is wrong."""
    if MARKETPLACE_JSON not in repo.entries:
        raise MarketplaceRepoInvalid(
            f"The repository has no {MARKETPLACE_JSON} at commit {repo.commit[:12]}.",
            hint="A marketplace repository lists its plugins in .claude-plugin/marketplace.json "
            "at its root (Claude Code's marketplace format).",
        )
    listing = _checked_size(repo.resolve(MARKETPLACE_JSON), MARKETPLACE_JSON, limits)
    document = parse_marketplace(repo.read(listing), max_plugins=limits.max_plugins)
    plugins: list[CheckedPlugin] = []
    names: dict[str, str] = {}
    for entry in document.plugins:
        plugin = _check_plugin(repo, entry, limits)
        manifest_path = _in_folder(plugin.source_path, PLUGIN_JSON)
        if plugin.name in names:
            raise MarketplaceRepoInvalid(
                f"Two plugins are named '{plugin.name}': {names[plugin.name]} and {manifest_path}.",
                hint="Give each plugin a name of its own in its plugin.json.",
            )
        names[plugin.name] = manifest_path
        why = unportable(plugin.name)
        if why is not None:
            raise MarketplaceRepoInvalid(
                f"{manifest_path}: the plugin's name {why}; its folder in the marketplace "
                "would be named after it.",
                hint='Give the plugin a kebab-case name in its plugin.json, e.g. "sql-review".',
            )
        plugins.append(plugin)
    _refuse_nested(plugins)
    return CheckedMarketplace(upstream_name=document.name, plugins=plugins)


def _check_plugin(
    repo: RepoReader, entry: PluginEntry, limits: MarketplaceSettings
) -> CheckedPlugin:
    folder = entry.source_path
    where = f"{MARKETPLACE_JSON} plugin '{entry.name}'"
    if not repo.is_folder(folder):
        what = "a file, link or submodule" if folder in repo.entries else "not in the commit"
        raise MarketplaceRepoInvalid(
            f"{where}: its source folder '{folder}' is {what}.",
            hint="Give the folder holding the plugin's .claude-plugin/plugin.json.",
        )
    files: list[PluginFile] = []
    total = 0
    prefix = f"{folder}/" if folder else ""
    for item in repo.under(folder):
        rel = item.path[len(prefix) :]
        if any(part.lower() == ".git" for part in rel.split("/")):
            raise MarketplaceRepoInvalid(
                f"{item.path} is inside a folder named .git, which git cannot serve.",
                hint="Rename or remove it.",
            )
        why = unportable(rel)
        if why is not None:
            raise MarketplaceRepoInvalid(
                f"{item.path}: {why}; Claude Code on Windows could not check out the marketplace.",
                hint="Rename it (letters, digits, '-', '_' and '.' inside a name work everywhere).",
            )
        blob = repo.resolve(item.path)  # a link's target; refuses submodules and bad links
        _checked_size(blob, item.path, limits)
        if blob.size < LFS_POINTER_MAX and repo.read(blob).startswith(LFS_POINTER):
            raise MarketplaceRepoInvalid(
                f"{item.path} is a Git LFS pointer, not the file itself: Agnes serves the "
                "commit's own files and fetches no LFS objects, so every analyst would get "
                "the pointer's few lines.",
                hint="Commit the file itself in the plugin (git lfs untrack it, then "
                "'git add --renormalize'), or leave it out of the plugin.",
            )
        total += blob.size
        if total > limits.max_plugin_bytes:
            raise MarketplaceRepoInvalid(
                f"The plugin in {folder or 'the repository root'} holds more than "
                f"{human_size(limits.max_plugin_bytes)} (reached at {item.path}).",
                hint="Make the plugin smaller, or raise the setting marketplace.max_plugin_bytes.",
            )
        files.append(PluginFile(rel, blob))
    clash = case_clash([f.rel for f in files])
    if clash is not None:
        raise MarketplaceRepoInvalid(
            f"{_in_folder(folder, clash[0])} and {_in_folder(folder, clash[1])} differ only "
            "in case (or in how an accent is encoded): on Windows and macOS one would "
            "overwrite the other.",
            hint="Rename or remove one of them.",
        )
    manifest_path = _in_folder(folder, PLUGIN_JSON)
    manifest_file = next((f for f in files if f.rel == PLUGIN_JSON), None)
    if manifest_file is None:
        raise MarketplaceRepoInvalid(
            f"{manifest_path} is missing ({where} points at {folder or 'the root'}).",
            hint="Every plugin folder holds .claude-plugin/plugin.json with at least a 'name'.",
        )
    manifest = parse_manifest(manifest_path, repo.read(manifest_file.blob))
    _check_component_paths(manifest_path, manifest, {f.rel for f in files})
    return CheckedPlugin(
        name=manifest["name"],
        # As in the served marketplace.json (feed.py): the entry's own fields win, so the
        # info, the CLI and the admin page say what Claude Code shows.
        version=_text(entry.extra.get("version")) or _text(manifest.get("version")),
        description=_text(entry.extra.get("description")) or _text(manifest.get("description")),
        source_path=folder,
        manifest=manifest,
        entry=entry.extra,
        files=tuple(files),
    )


# A Git LFS pointer file (the LFS spec: under 1024 bytes, starting with this line).
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
LFS_POINTER_MAX = 1024

# plugin.json keys naming a file or folder of the plugin (or, for hooks, mcpServers and
# lspServers, holding the configuration inline, an object: nothing to check then).
COMPONENT_KEYS = (
    "commands",
    "agents",
    "skills",
    "hooks",
    "mcpServers",
    "outputStyles",
    "lspServers",
)


def _check_component_paths(manifest_path: str, manifest: dict[str, Any], rels: set[str]) -> None:
    """Each path a component key names is inside the plugin and in the commit: Claude Code
    cannot install a plugin whose plugin.json names a missing path, and git keeps no empty
    folder, so a folder left empty where the plugin was written is missing here."""
    for key in COMPONENT_KEYS:
        value = manifest.get(key)
        paths = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for path in paths:
            if not isinstance(path, str):
                continue
            parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
            if path.startswith(("/", "\\")) or ".." in parts:
                raise MarketplaceRepoInvalid(
                    f"{manifest_path}: '{key}' names {path!r}, outside the plugin's folder.",
                    hint="Name a path inside the plugin, e.g. './commands'.",
                )
            wanted = "/".join(parts)
            if not any(rel == wanted or rel.startswith(f"{wanted}/") for rel in rels):
                raise MarketplaceRepoInvalid(
                    f"{manifest_path}: '{key}' names {path!r}, which is not in the commit "
                    "(git keeps no empty folder).",
                    hint="Add the files it names, or remove the key: Claude Code cannot "
                    "install a plugin whose plugin.json names a missing path.",
                )


def _refuse_nested(plugins: list[CheckedPlugin]) -> None:
    """Each plugin's folder apart from the others': a plugin is granted and served by
    itself, so no folder may hold another plugin's (the root ``./`` holds them all)."""
    for outer in plugins:
        for inner in plugins:
            folder = outer.source_path
            if inner is outer or not (folder == "" or inner.source_path.startswith(f"{folder}/")):
                continue
            raise MarketplaceRepoInvalid(
                f"Plugin '{inner.name}' ({inner.source_path}) is inside the folder of plugin "
                f"'{outer.name}' ({folder or 'the repository root'}): whoever is granted "
                f"'{outer.name}' would get the files of '{inner.name}' too.",
                hint="Put each plugin in a folder of its own, side by side (e.g. plugins/<name>); "
                "a plugin at the root (source './') must be the only one.",
            )


def _checked_size(blob: TreeEntry, shown: str, limits: MarketplaceSettings) -> TreeEntry:
    if blob.size > limits.max_file_bytes:
        via = "" if blob.path == shown else f" (through the link to {blob.path})"
        raise MarketplaceRepoInvalid(
            f"{shown} is {human_size(blob.size)}{via}, over the limit of "
            f"{human_size(limits.max_file_bytes)} for one file.",
            hint="Remove the file or make it smaller, or raise the setting "
            "marketplace.max_file_bytes.",
        )
    return blob


def _in_folder(folder: str, rel: str) -> str:
    return f"{folder}/{rel}" if folder else rel


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
