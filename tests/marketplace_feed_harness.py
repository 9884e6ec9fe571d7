"""Plugins put straight into the store (no git sync), grants, and a real git client.

The feed tests and the benchmark need plugins served, not synced: :func:`publish`
writes each plugin's files into the content-addressed store (``_plugins/<hash>/``, a
temporary folder renamed into place, as the sync does), registers the marketplace if
needed and records the set as its last good sync. :func:`git` runs the real ``git``
binary with the caller's token handed over by a credential helper reading an
environment variable: never in the URL, on the command line or in a config file.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agnes_mcp.marketplace.layout import MarketplaceLayout
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.marketplaces import MarketplacePlugin

TOKEN_VARIABLE = "AGNES_TEST_FEED_TOKEN"
# git runs this through the shell: it answers 'get' with the token from the environment.
CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; echo username=analyst; '
    f'echo "password=${TOKEN_VARIABLE}"; }}; f'
)


@dataclass(frozen=True)
class PluginSpec:
    name: str
    files: Mapping[str, bytes] = field(default_factory=dict)  # relative path -> content
    executable: frozenset[str] = frozenset()
    version: str | None = "1.0.0"
    description: str | None = None

    def all_files(self) -> dict[str, bytes]:
        manifest: dict[str, str] = {"name": self.name}
        if self.version:
            manifest["version"] = self.version
        if self.description:
            manifest["description"] = self.description
        document = json.dumps(manifest, indent=2, sort_keys=True).encode()
        return {".claude-plugin/plugin.json": document, **self.files}


def content_hash(files: Mapping[str, bytes], executable: frozenset[str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        mode = b"755" if path in executable else b"644"
        digest.update(path.encode() + b"\0" + mode + b"\0")
        digest.update(hashlib.sha256(files[path]).digest())
    return digest.hexdigest()


def store_plugin(layout: MarketplaceLayout, spec: PluginSpec) -> tuple[str, int, int]:
    """Write the plugin's files (once per content); its hash, file count and bytes."""
    files = spec.all_files()
    key = content_hash(files, spec.executable)
    final = layout.plugin_files(key)
    if not final.is_dir():
        layout.plugins_dir.mkdir(parents=True, exist_ok=True)
        temporary = layout.plugins_dir / f".test-{secrets.token_hex(6)}"
        for path, data in files.items():
            target = temporary.joinpath(*path.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o755 if path in spec.executable else 0o644)
        temporary.rename(final)
    return key, len(files), sum(len(d) for d in files.values())


def publish(
    services: Services, slug: str, plugins: Sequence[PluginSpec]
) -> list[MarketplacePlugin]:
    """Make ``plugins`` the last good sync of marketplace ``slug`` (registered if new)."""
    store = services.marketplace_store
    if slug not in {m.slug for m in store.all()}:
        store.add(
            slug,
            slug.title(),
            f"https://git.example.com/{slug}.git",
            ref=None,
            token_env=None,
            username=None,
            added_by="test",
        )
    recorded = []
    for spec in plugins:
        key, count, size = store_plugin(services.marketplaces.layout, spec)
        manifest = json.loads(spec.all_files()[".claude-plugin/plugin.json"])
        recorded.append(
            MarketplacePlugin(
                marketplace=slug,
                name=spec.name,
                version=spec.version,
                description=spec.description,
                source_path=f"plugins/{spec.name}",
                content_hash=key,
                files=count,
                bytes=size,
                manifest=manifest,
                entry={},
            )
        )
    commit = hashlib.sha1("".join(p.content_hash for p in recorded).encode()).hexdigest()
    store.record_success(slug, commit, slug, recorded)
    return recorded


def grant(services: Services, group_id: str, grant_id: str) -> str:
    """Grant plugin ``grant_id`` ('slug/plugin') to a group; the grant's id."""
    added = services.grants.add(
        group_id, ResourceType.MARKETPLACE_PLUGIN, grant_id, granted_by="test"
    )
    return added.id


def git(
    *args: str, token: str | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The git binary, never prompting; with ``token``, a credential helper answers with
    it from the environment."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_VARIABLE}
    env["GIT_TERMINAL_PROMPT"] = "0"
    config = ["-c", "credential.helper="]
    if token is not None:
        env[TOKEN_VARIABLE] = token
        config += ["-c", f"credential.helper={CREDENTIAL_HELPER}"]
    return subprocess.run(
        ["git", *config, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
