"""Broken and malicious upstream repositories are refused, naming the file, and the last
good sync stays served: its rows, its content hashes and its files on disk."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agnes_mcp.errors import MarketplaceRepoInvalid
from agnes_mcp.marketplace.sync import sync_marketplace
from agnes_mcp.services import Services
from agnes_mcp.settings import load_settings
from tests.git_upstream import UpstreamRepo, sample_marketplace

MARKETPLACE_JSON = ".claude-plugin/marketplace.json"
NOTES_JSON = "plugins/notes/.claude-plugin/plugin.json"
ENTRIES = [
    {"name": "sql-review", "source": "./plugins/sql-review"},
    {"name": "notes", "source": "./plugins/notes"},
]


@dataclass(frozen=True)
class Case:
    id: str
    breaks: Callable[[UpstreamRepo], None]
    names: tuple[str, ...]  # each must be in the refusal


def _source(source: object) -> Callable[[UpstreamRepo], None]:
    def change(repo: UpstreamRepo) -> None:
        repo.write_marketplace([*ENTRIES, {"name": "bad", "source": source}])

    return change


def _write(rel: str, content: str | bytes) -> Callable[[UpstreamRepo], None]:
    return lambda repo: repo.write(rel, content)


def _link(rel: str, target: str) -> Callable[[UpstreamRepo], None]:
    return lambda repo: repo.symlink(rel, target)


def _link_loop(repo: UpstreamRepo) -> None:
    repo.symlink("plugins/notes/a.md", "b.md")
    repo.symlink("plugins/notes/b.md", "a.md")


def _submodule(repo: UpstreamRepo) -> None:
    repo.gitlink("plugins/notes/vendor", repo.head())


def _duplicate(repo: UpstreamRepo) -> None:
    repo.write_plugin("plugins/notes-copy", "notes")
    repo.write_marketplace([*ENTRIES, {"name": "notes-copy", "source": "./plugins/notes-copy"}])


def _nested(repo: UpstreamRepo) -> None:
    repo.write_plugin("plugins/notes/inner", "inner")
    repo.write_marketplace([*ENTRIES, {"name": "inner", "source": "./plugins/notes/inner"}])


def _root_beside_others(repo: UpstreamRepo) -> None:
    repo.write_json(".claude-plugin/plugin.json", {"name": "everything"})
    repo.write_marketplace([*ENTRIES, {"name": "everything", "source": "./"}])


def _case_clash(repo: UpstreamRepo) -> None:
    repo.write("plugins/notes/Readme.md", "one")
    repo.write("plugins/notes/README.md", "two")


def _accent_clash(repo: UpstreamRepo) -> None:
    """One name on macOS (its file system and git there take both encodings for one)."""
    repo.write("plugins/notes/caf\u00e9.md", "one character")
    repo.write("plugins/notes/cafe\u0301.md", "e and a combining accent")


def _too_many(repo: UpstreamRepo) -> None:
    repo.write_marketplace([*ENTRIES] * 4)  # 8 entries, the limit here is 6


def _too_big_plugin(repo: UpstreamRepo) -> None:
    for index in range(5):
        repo.write(f"plugins/notes/data/part{index}.txt", "x" * 3_500)


def _many_files(repo: UpstreamRepo) -> None:
    """Files outside every plugin count too: a few megabytes of pack can hold millions of
    empty files, whose listing was held whole in the server's memory (1M: 570 MB)."""
    for index in range(40):
        repo.write(f"docs/page{index}.md", "")


CASES = [
    Case(
        "marketplace.json bad JSON",
        _write(MARKETPLACE_JSON, '{\n  "name": "team-tools",\n  "plugins": [\n}\n'),
        (MARKETPLACE_JSON, "line 4"),
    ),
    Case("plugin.json bad JSON", _write(NOTES_JSON, '{"name": "notes",,}'), (NOTES_JSON, "line 1")),
    Case(
        "plugin.json nested past what json reads",  # was "the sync failed unexpectedly"
        _write(NOTES_JSON, '{"name": "notes", "author": ' + "[" * 2000 + "]" * 2000 + "}"),
        (NOTES_JSON, "more than 64 deep"),
    ),
    Case(
        "marketplace.json nested deep",
        _write(MARKETPLACE_JSON, '{"name": "t", "plugins": [], "x": ' + "[" * 65 + "]" * 65 + "}"),
        (MARKETPLACE_JSON, "more than 64 deep"),
    ),
    Case("plugin.json missing", lambda repo: repo.remove(NOTES_JSON), (NOTES_JSON, "missing")),
    Case("plugin.json bad name", _write(NOTES_JSON, '{"name": "Bad Name"}'), (NOTES_JSON, "name")),
    Case(
        "marketplace.json missing",
        lambda repo: repo.remove(MARKETPLACE_JSON),
        (MARKETPLACE_JSON, "no "),
    ),
    Case(
        "marketplace.json no plugins",
        _write(MARKETPLACE_JSON, '{"name": "x"}'),
        (MARKETPLACE_JSON, "'plugins'"),
    ),
    Case("source ../outside", _source("../outside"), (MARKETPLACE_JSON, "'bad'", "..")),
    Case("source ./a/../../x", _source("./plugins/../../x"), (MARKETPLACE_JSON, "'bad'", "..")),
    Case("source /etc", _source("/etc"), (MARKETPLACE_JSON, "'bad'", "absolute")),
    Case("source backslash", _source("plugins\\notes"), (MARKETPLACE_JSON, "'bad'", "backslash")),
    Case(
        "source object",
        _source({"source": "github", "repo": "example/plugins"}),
        (MARKETPLACE_JSON, "'bad'", "elsewhere"),
    ),
    Case(
        "source URL",
        _source("https://git.example.com/team/plugin.git"),
        (MARKETPLACE_JSON, "'bad'", "elsewhere"),
    ),
    Case(
        "source missing folder", _source("./plugins/nowhere"), (MARKETPLACE_JSON, "plugins/nowhere")
    ),
    Case("source is a file", _source(f"./{NOTES_JSON}"), (MARKETPLACE_JSON, NOTES_JSON, "a file")),
    Case("source not a string", _source(42), (MARKETPLACE_JSON, "'bad'", "source")),
    Case(
        "symlink leaving the tree",
        _link("plugins/notes/passwd", "../../../../etc/passwd"),
        ("plugins/notes/passwd", "leaves the repository"),
    ),
    Case(
        "absolute symlink",
        _link("plugins/notes/passwd", "/etc/passwd"),
        ("plugins/notes/passwd", "outside the repository"),
    ),
    Case(
        "symlink to a folder",
        _link("plugins/notes/other", "../sql-review"),
        ("plugins/notes/other", "a folder"),
    ),
    Case(
        "dangling symlink",
        _link("plugins/notes/gone.md", "nothing-here.md"),
        ("plugins/notes/gone.md", "does not exist"),
    ),
    Case(
        "symlink loop",
        _link_loop,
        ("plugins/notes/a.md", "chain"),
    ),
    Case(
        "file over the size limit",
        _write("plugins/notes/big.bin", b"\0" * 5_000),
        ("plugins/notes/big.bin", "limit"),
    ),
    Case("plugin over the size limit", _too_big_plugin, ("plugins/notes", "more than")),
    Case(
        "file name with a backslash",  # a path on Windows, and a way out of a ZIP's folder
        _write("plugins/notes/..\\..\\..\\evil.md", "x"),
        ("plugins/notes/..\\..\\..\\evil.md", "backslash"),
    ),
    Case(
        "file name Windows cannot hold",  # git for Windows refuses the whole checkout
        _write('plugins/notes/docs/say "hi".md', "x"),
        ('plugins/notes/docs/say "hi".md', "Windows"),
    ),
    Case(
        "folder named like a device",
        _write("plugins/notes/aux/readme.md", "x"),
        ("plugins/notes/aux/readme.md", "'aux'", "device name"),
    ),
    Case(
        "plugin.json names a missing folder",  # an empty folder is not in a commit
        _write(NOTES_JSON, '{"name": "notes", "agents": "./agents/"}'),
        (NOTES_JSON, "'agents'", "./agents/", "not in the commit"),
    ),
    Case(
        "plugin.json names a path outside",
        _write(NOTES_JSON, '{"name": "notes", "commands": ["../sql-review/commands"]}'),
        (NOTES_JSON, "'commands'", "outside the plugin"),
    ),
    Case(
        "a Git LFS pointer",  # the analysts would get these three lines, not the image
        _write(
            "plugins/notes/diagram.png",
            "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize 9\n",
        ),
        ("plugins/notes/diagram.png", "Git LFS pointer"),
    ),
    Case("submodule", _submodule, ("plugins/notes/vendor", "submodule")),
    Case("duplicate plugin names", _duplicate, ("'notes'", NOTES_JSON, "plugins/notes-copy")),
    Case("plugin inside a plugin", _nested, ("'inner'", "plugins/notes/inner", "'notes'")),
    Case("root plugin beside others", _root_beside_others, ("'everything'", "repository root")),
    Case("too many plugins", _too_many, (MARKETPLACE_JSON, "at most 6")),
    Case(
        "Windows device name", _write("plugins/notes/aux.md", "x"), ("plugins/notes/aux.md", "AUX")
    ),
    Case(
        "device name as a folder",
        _write("plugins/notes/con/readme.md", "x"),
        ("plugins/notes/con/readme.md", "CON"),
    ),
    Case("colon in a name", _write("plugins/notes/v2:draft.md", "x"), ("v2:draft.md", "':'")),
    Case("trailing dot", _write("plugins/notes/notes.", "x"), ("plugins/notes/notes.", "dot")),
    Case("names differing in case", _case_clash, ("plugins/notes/Readme.md", "in case")),
    Case(
        "names differing in how an accent is encoded",
        _accent_clash,
        ("plugins/notes/caf\u00e9.md", "plugins/notes/cafe\u0301.md", "accent"),
    ),
    Case("more files than max_repo_files", _many_files, ("more than 40 files",)),
    Case(
        "plugin name ending in a dot", _write(NOTES_JSON, '{"name": "notes."}'), (NOTES_JSON, "dot")
    ),
]


def open_services(data_dir: Path) -> Services:
    settings = load_settings(
        data_dir=data_dir,
        scheduler_enabled=False,
        marketplace={
            "allow_local": True,
            "max_file_bytes": 4_096,
            "max_plugin_bytes": 16_384,
            "max_plugins": 6,
            "max_repo_files": 40,
        },
    )
    return Services.open(settings)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    opened = open_services(tmp_path_factory.mktemp("refusals") / "data")
    try:
        yield opened
    finally:
        opened.close()


def snapshot(services: Services, slug: str) -> dict[str, object]:
    plugins = services.marketplaces.plugins(slug)
    layout = services.marketplaces.layout
    files = {
        p.name: {
            f.relative_to(layout.plugin_files(p.content_hash)).as_posix(): f.read_bytes()
            for f in sorted(layout.plugin_files(p.content_hash).rglob("*"))
            if f.is_file()
        }
        for p in plugins
    }
    return {"rows": [p.model_dump() for p in plugins], "files": files}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_broken_commit_is_refused_naming_the_file_and_the_last_good_stays(
    services: Services, tmp_path: Path, case: Case
) -> None:
    slug = f"case-{CASES.index(case)}"
    upstream = UpstreamRepo(tmp_path / "upstream")
    good = sample_marketplace(upstream)
    services.marketplaces.add(slug, str(upstream.path), added_by="admin@example.com", sync=False)
    assert services.marketplaces.sync_now(slug).last_sync_outcome == "ok"
    before = snapshot(services, slug)
    assert len(before["rows"]) == 2  # type: ignore[arg-type]

    case.breaks(upstream)
    bad = upstream.commit(case.id)
    after = services.marketplaces.sync_now(slug)

    error = after.last_sync_error or ""
    assert after.last_sync_outcome == "failed", case.id
    for part in case.names:
        assert part in error, (part, error)
    assert (after.good_commit, after.last_sync_commit) == (good, bad)
    assert snapshot(services, slug) == before


def test_the_refusal_is_a_typed_error_carrying_the_commit(
    services: Services, tmp_path: Path
) -> None:
    upstream = UpstreamRepo(tmp_path / "upstream")
    upstream.write_marketplace([{"name": "x", "source": "../x"}])
    bad = upstream.commit()
    services.marketplaces.add("typed", str(upstream.path), added_by="a@example.com", sync=False)
    marketplace = services.marketplace_store.get("typed")
    with pytest.raises(MarketplaceRepoInvalid) as raised:
        sync_marketplace(services.settings, services.marketplaces.layout, marketplace)
    assert raised.value.code == "marketplace_repo_invalid" and raised.value.hint
    assert getattr(raised.value, "commit", None) == bad


@pytest.mark.parametrize("name", ["..", ".git"])
def test_a_tree_entry_git_itself_calls_malformed_is_refused_at_the_fetch(
    services: Services, tmp_path: Path, name: str
) -> None:
    slug = "raw-dots" if name == ".." else "raw-git"
    upstream = UpstreamRepo(tmp_path / "upstream")
    good = sample_marketplace(upstream)
    services.marketplaces.add(slug, str(upstream.path), added_by="admin@example.com", sync=False)
    services.marketplaces.sync_now(slug)
    before = snapshot(services, slug)

    upstream.commit_raw_entry(name, b"[core]\n\tfsmonitor = touch /tmp/owned\n")
    after = services.marketplaces.sync_now(slug)

    assert after.last_sync_outcome == "failed" and after.good_commit == good
    assert "malformed git object" in (after.last_sync_error or ""), after.last_sync_error
    assert snapshot(services, slug) == before


def test_component_paths_that_are_in_the_plugin_are_served(
    services: Services, tmp_path: Path
) -> None:
    """plugin.json keys naming a file, a folder (with or without './' and a trailing '/'),
    or holding their configuration inline, are all fine."""
    upstream = UpstreamRepo(tmp_path / "upstream")
    upstream.write_json(
        ".claude-plugin/plugin.json",
        {
            "name": "parts",
            "commands": ["./commands/run.md", "extra"],
            "skills": "./skills/",
            "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "true"}]}]},
            "mcpServers": "./.mcp.json",
        },
    )
    upstream.write("commands/run.md", "# run\n")
    upstream.write("extra/more.md", "# more\n")
    upstream.write("skills/s/SKILL.md", "---\nname: s\ndescription: d\n---\n")
    upstream.write(".mcp.json", "{}")
    upstream.write_marketplace([{"name": "parts", "source": "./"}])
    upstream.commit()
    services.marketplaces.add("parts", str(upstream.path), added_by="a@example.com", sync=False)
    synced = services.marketplaces.sync_now("parts")
    assert synced.last_sync_outcome == "ok", synced.last_sync_error


def test_a_lone_plugin_at_the_root_is_served(services: Services, tmp_path: Path) -> None:
    """The usual single-plugin layout (marketplace.json and plugin.json side by side, source
    './') holds no other plugin's folder: it syncs."""
    upstream = UpstreamRepo(tmp_path / "upstream")
    upstream.write_json(".claude-plugin/plugin.json", {"name": "solo"})
    upstream.write("commands/solo.md", "# solo\n")
    upstream.write_marketplace([{"name": "solo", "source": "./"}])
    upstream.commit()
    services.marketplaces.add("solo", str(upstream.path), added_by="a@example.com", sync=False)
    synced = services.marketplaces.sync_now("solo")
    assert synced.last_sync_outcome == "ok", synced.last_sync_error
    assert [p.name for p in services.marketplaces.plugins("solo")] == ["solo"]


def test_a_fetch_past_max_fetch_bytes_is_stopped_and_leaves_nothing_on_disk(
    tmp_path: Path,
) -> None:
    """A repository of large files was fetched whole (only the timeout bounded it) and
    stayed in the mirror, refused or not: a few pushes could fill the server's disk."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        scheduler_enabled=False,
        marketplace={"allow_local": True, "max_fetch_bytes": 256 * 1024},
    )
    services = Services.open(settings)
    try:
        upstream = UpstreamRepo(tmp_path / "upstream")
        good = sample_marketplace(upstream)
        services.marketplaces.add("big", str(upstream.path), added_by="a@example.com", sync=False)
        assert services.marketplaces.sync_now("big").last_sync_outcome == "ok"
        before = snapshot(services, "big")
        mirror = services.marketplaces.layout.mirror("big")
        held = sum(f.stat().st_size for f in mirror.rglob("*") if f.is_file())

        upstream.write("plugins/notes/video.bin", os.urandom(1024 * 1024))  # incompressible
        upstream.commit("a large file")
        after = services.marketplaces.sync_now("big")

        assert after.last_sync_outcome == "failed"
        assert "max_fetch_bytes" in (after.last_sync_error or "")
        assert "256.0 KiB" in (after.last_sync_error or "")
        assert after.good_commit == good
        assert snapshot(services, "big") == before
        left = sum(f.stat().st_size for f in mirror.rglob("*") if f.is_file())
        assert left < held + 64 * 1024, "\n".join(
            f"{f.stat().st_size} {f.relative_to(mirror)}"
            for f in mirror.rglob("*")
            if f.is_file() and "hooks" not in str(f)
        )
    finally:
        services.close()
