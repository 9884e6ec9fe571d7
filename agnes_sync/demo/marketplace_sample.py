"""The demo company's plugin marketplace: a small git repository in Claude Code's
marketplace format, built on the spot so the whole plugin flow runs offline.

Two plugins, each with a command and a skill (no empty component folders: Claude Code
refuses a plugin whose component folder is empty):

- ``agnes-analyst``: how to answer questions with Agnes (granted to the Analysts);
- ``support-insights``: reviewing support tickets (not granted to them, like the
  ``support_tickets`` table).

The repository is built with a fixed author, committer and date, so the same files give
the same commit everywhere; building it again changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from agnes_sync.errors import AgnesError

FOLDER = "demo-marketplace"
GRANTED_PLUGIN = "agnes-analyst"
OTHER_PLUGIN = "support-insights"
_WHEN = "2026-01-01T09:00:00+00:00"
_WHO = ("Demo Company Data Team", "data-team@example.com")


class SampleMarketplaceFailed(AgnesError):
    code = "demo_marketplace_failed"
    status = 500
    default_hint = "Install git (the demo's plugin marketplace is a git repository)."


def _json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


_PLUGINS: dict[str, dict[str, object]] = {
    GRANTED_PLUGIN: {
        "description": "Answer business questions with Agnes: find tables, check them, query.",
        "files": {
            "commands/ask-data.md": """---
description: Answer a business question from the company's data through Agnes
argument-hint: <question>
---
Answer this question with the Agnes MCP tools: $ARGUMENTS

1. Call `catalog` to see the tables you may use, then `describe` the ones that look
   relevant (their columns, freshness and query mode).
2. Write one SELECT and run it with `query`. For a `remote` table, estimate first and
   take a `snapshot_create` when the scan is too large.
3. Answer in two or three sentences, then show the SQL you ran.
""",
            "skills/querying-agnes/SKILL.md": """---
name: querying-agnes
description: Use when answering questions about the company's data in an Agnes workspace.
---
# Querying the company's data with Agnes

- `catalog` lists only the tables granted to you; a missing table is not granted, so
  say so instead of guessing its contents.
- Local tables (`local`, `materialized`) are in the workspace: `query` them freely.
- `remote` tables stay in the warehouse: `query_remote` them under the scan cap, or take
  a filtered `snapshot_create` and query the snapshot locally.
- Every refusal names its next step (`table_not_found`, `remote_scan_too_large`, ...):
  follow it rather than retrying the same call.
- Metrics (`metrics_list`, `metrics_get`) hold the company's agreed definitions: prefer
  them to your own formula for revenue, churn or conversion.
""",
        },
    },
    OTHER_PLUGIN: {
        "description": "Review support tickets: backlog, resolution times and satisfaction.",
        "files": {
            "commands/ticket-review.md": """---
description: Review this week's support tickets by priority and category
---
Using the `support_tickets` table through Agnes, summarise the last seven days: tickets
opened and resolved by priority, the median resolution time by category, and the CSAT
trend. Flag any category whose resolution time doubled.
""",
            "skills/support-metrics/SKILL.md": """---
name: support-metrics
description: Use when asked about support performance (tickets, resolution time, CSAT).
---
# Support metrics

- Resolution time is `resolved_at - created_at` for resolved tickets only.
- CSAT is the mean of `csat` over tickets that have one; say how many answered.
- Compare like with like: the same priority, the same weekdays.
""",
        },
    },
}


def sample_files() -> dict[str, str]:
    """Every file of the sample repository, by its path in the repository."""
    files = {
        ".claude-plugin/marketplace.json": _json(
            {
                "name": "demo-company",
                "owner": {"name": _WHO[0], "email": _WHO[1]},
                "metadata": {"description": "The demo company's Claude Code plugins."},
                "plugins": [
                    {
                        "name": name,
                        "source": f"./plugins/{name}",
                        "description": plugin["description"],
                        "version": "1.0.0",
                    }
                    for name, plugin in _PLUGINS.items()
                ],
            }
        ),
        "README.md": "# Demo company plugins\n\nServed to analysts by Agnes, per group.\n",
    }
    for name, plugin in _PLUGINS.items():
        files[f"plugins/{name}/.claude-plugin/plugin.json"] = _json(
            {
                "name": name,
                "version": "1.0.0",
                "description": plugin["description"],
                "author": {"name": _WHO[0]},
            }
        )
        contents = plugin["files"]
        assert isinstance(contents, dict)
        for path, text in contents.items():
            files[f"plugins/{name}/{path}"] = text
    return files


def _git(folder: Path, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise SampleMarketplaceFailed("git is not installed; the demo has no plugins.")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,  # no signing or hooks of the user's own config
        "GIT_AUTHOR_NAME": _WHO[0],
        "GIT_AUTHOR_EMAIL": _WHO[1],
        "GIT_AUTHOR_DATE": _WHEN,
        "GIT_COMMITTER_NAME": _WHO[0],
        "GIT_COMMITTER_EMAIL": _WHO[1],
        "GIT_COMMITTER_DATE": _WHEN,
        "LC_ALL": "C",
    }
    done = subprocess.run(  # noqa: S603 - a fixed binary and argument list, no shell
        [git, *args], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SampleMarketplaceFailed(
            f"git {args[0]} failed in {folder}: {done.stderr.strip() or done.returncode}"
        )
    return done.stdout.strip()


def ensure_sample_marketplace(folder: Path) -> str:
    """Build (or bring up to date) the sample repository in ``folder``; its commit."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".git").is_dir():
        _git(folder, "init", "--quiet", "--initial-branch=main")
    wanted = sample_files()
    for path in sorted(wanted):
        target = folder / path
        if not target.is_file() or target.read_text(encoding="utf-8") != wanted[path]:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(wanted[path], encoding="utf-8")
    _git(folder, "add", "--", *sorted(wanted))
    if not _head(folder) or _git(folder, "diff", "--cached", "--name-only"):
        _git(folder, "commit", "--quiet", "--no-verify", "-m", "Demo company plugins")
    return _git(folder, "rev-parse", "HEAD")


def _head(folder: Path) -> bool:
    try:
        _git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except SampleMarketplaceFailed:
        return False
    return True
