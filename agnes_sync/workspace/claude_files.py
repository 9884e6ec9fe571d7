"""The Claude Code files ``agnes init`` writes into a workspace, merged into what is there.

- ``.mcp.json``: the ``agnes`` MCP server (stdio, ``agnes mcp``); other servers stay.
- ``.claude/settings.json``: ``SessionStart`` hooks running ``agnes pull --quiet`` then
  ``agnes marketplace refresh --quiet`` (the workspace's copy of the plugin feed and
  Claude Code's own clone of it brought to the current grants) and a ``SessionEnd`` hook
  running ``agnes push --quiet``, each added once, and the server's plugin marketplace
  under ``extraKnownMarketplaces`` (a git source: its URL only, the token reaches git
  through its credential helper); the user's own keys, hooks and marketplaces stay as
  they are.
- ``CLAUDE.md``: the agent rails between two marker lines; text outside them stays.
- ``.gitignore``: ``.agnes/`` (the pulled data), when the folder has one or is in a git work tree.

Every write is atomic, and running it again changes nothing that is already right.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agnes_sync import atomic
from agnes_sync.errors import AgnesError

# (event, agnes command) in the order written: each runs as ``agnes COMMAND --quiet ||
# true``, so a server that is down (or has no marketplace) never blocks a session.
HOOKS = (
    ("SessionStart", "pull"),
    ("SessionStart", "marketplace refresh"),
    ("SessionEnd", "push"),
)
BEGIN = "<!-- agnes:begin (managed by 'agnes init'; edits here are replaced) -->"
END = "<!-- agnes:end -->"


class ClaudeFileInvalid(AgnesError):
    code = "claude_file_invalid"
    status = 400
    default_hint = "Fix the file's JSON (or move it away), then run 'agnes init' again."


def _write(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds it; True when written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)
    return True


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ClaudeFileInvalid(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ClaudeFileInvalid(f"{path} must hold a JSON object.")
    return data


def write_mcp_json(root: Path, agnes: str) -> bool:
    path = root / ".mcp.json"
    data = _json(path)
    servers = data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise ClaudeFileInvalid(f"{path}: 'mcpServers' must be an object.")
    servers["agnes"] = {"type": "stdio", "command": agnes, "args": ["mcp"]}
    return _write(path, json.dumps(data, indent=2) + "\n")


def _ours(hook: Any, verb: str) -> bool:
    command = str(hook.get("command", "")) if isinstance(hook, dict) else ""
    return "agnes" in command and f"{verb} --quiet" in command


def _hook(event: list[Any], command: str, verb: str) -> list[Any]:
    """``event``'s hook groups without any earlier agnes hook for ``verb``, plus ours."""
    groups = []
    for group in event:
        if isinstance(group, dict) and isinstance(group.get("hooks"), list):
            kept = [h for h in group["hooks"] if not _ours(h, verb)]
            if not kept:
                continue  # the group held only our old hook
            group = {**group, "hooks": kept}
        groups.append(group)
    groups.append({"hooks": [{"type": "command", "command": command}]})
    return groups


@dataclass(frozen=True)
class KnownMarketplace:
    """The server's marketplace as Claude Code should know it."""

    name: str  # the marketplace's name (settings ``marketplace.name`` on the server)
    git_url: str  # ``<server>/marketplace.git``, never with credentials in it

    def entry(self) -> dict[str, Any]:
        return {"source": {"source": "git", "url": self.git_url}}


def _add_marketplace(path: Path, data: dict[str, Any], marketplace: KnownMarketplace) -> None:
    """Ours under its name; an entry of ours under an older name (same URL) goes."""
    known = data.setdefault("extraKnownMarketplaces", {})
    if not isinstance(known, dict):
        raise ClaudeFileInvalid(f"{path}: 'extraKnownMarketplaces' must be an object.")
    for name, entry in list(known.items()):
        source = entry.get("source") if isinstance(entry, dict) else None
        url = source.get("url") if isinstance(source, dict) else None
        if name != marketplace.name and url == marketplace.git_url:
            del known[name]
    known[marketplace.name] = marketplace.entry()


def write_settings(root: Path, agnes: str, marketplace: KnownMarketplace | None = None) -> bool:
    path = root / ".claude" / "settings.json"
    data = _json(path)
    if marketplace is not None:
        _add_marketplace(path, data, marketplace)
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ClaudeFileInvalid(f"{path}: 'hooks' must be an object.")
    for event, verb in HOOKS:
        current = hooks.get(event, [])
        if not isinstance(current, list):
            raise ClaudeFileInvalid(f"{path}: 'hooks.{event}' must be a list.")
        hooks[event] = _hook(current, f"{agnes} {verb} --quiet || true", verb)
    return _write(path, json.dumps(data, indent=2) + "\n")


def write_claude_md(root: Path, rails: str) -> bool:
    path = root / "CLAUDE.md"
    block = f"{BEGIN}\n{rails.strip()}\n{END}\n"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + block + tail.removeprefix("\n")
    else:
        new = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    return _write(path, new)


def ignore_data(root: Path) -> bool:
    """``.agnes/`` in the folder's ``.gitignore``: when it has one, or when the folder is
    inside a git work tree (a workspace made in a checkout must not offer its pulled data
    to ``git add``)."""
    path = root / ".gitignore"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not _in_git_work_tree(root):
            return False
        text = ""
    if any(line.strip() in (".agnes", ".agnes/", "/.agnes/") for line in text.splitlines()):
        return False
    return _write(path, text + ("" if text.endswith("\n") or not text else "\n") + ".agnes/\n")


def _in_git_work_tree(root: Path) -> bool:
    here = root.resolve()
    return any((folder / ".git").exists() for folder in (here, *here.parents))
