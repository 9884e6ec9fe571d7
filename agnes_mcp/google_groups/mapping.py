"""Which Agnes group a Google group becomes.

The rule (docs/group-sync.md):

* Only groups whose e-mail starts with ``auth.google_groups.prefix`` are synced (all when
  the prefix is empty), compared case-insensitively.
* The group named by ``auth.google_groups.admin_group`` becomes Agnes's ``Admin`` group,
  whatever the prefix.
* Any other group becomes the Agnes group named after the local part of its e-mail,
  lower-cased: ``data-team@example.com`` → ``data-team``. Characters Agnes names do not
  allow become ``-``, leading non-alphanumerics are dropped and the name is cut at 64
  characters. Two Google groups with the same local part (in two domains) share one
  Agnes group.
* A name that is one of Agnes's built-in groups (``Admin``, ``Everyone``) is never
  joined through it: only ``admin_group`` can make someone an admin.
* A name that had to be changed (``o'brien+ops`` → ``o-brien-ops``) joins only the group
  synced from that very Google group: ``'finance@…``, a group any employee may create,
  joined the admins' ``finance`` group and its grants. A group made for such a Google
  group is joined by no other (not even the exact ``finance@…``): each refusal is listed
  in the sync's ``skipped``, never resolved silently.
* Names are compared case-insensitively, after trimming spaces: ``Finance@Example.com``
  is ``finance@example.com``, one Google group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.google_groups.directory_client import GoogleGroup
from agnes_mcp.settings import GoogleGroupsSettings
from agnes_mcp.store.group_sync import WantedGroup

_DISALLOWED = re.compile(r"[^a-z0-9._-]+")
_LEADING = re.compile(r"^[^a-z0-9]+")
MAX_NAME = 64


def agnes_group_name(google_email: str) -> str | None:
    """The Agnes group name for a Google group's e-mail, or ``None`` if nothing is left."""
    local = google_email.strip().lower().split("@", 1)[0]
    name = _LEADING.sub("", _DISALLOWED.sub("-", local))[:MAX_NAME]
    return name or None


def targets(groups: Iterable[GoogleGroup], settings: GoogleGroupsSettings) -> list[WantedGroup]:
    """The Agnes groups ``groups`` map to, after the prefix filter: one per Google group,
    exact names before changed ones (the store refuses a group to another's, and says so)."""
    prefix = settings.prefix.strip().lower()
    admin_group = (settings.admin_group or "").strip().lower()
    chosen: dict[str, WantedGroup] = {}
    for group in groups:
        email = group.email.strip().lower()
        if admin_group and email == admin_group:
            target = WantedGroup(google_email=email, group_id=ADMIN_GROUP_ID)
        elif prefix and not email.startswith(prefix):
            continue
        else:
            name = agnes_group_name(email)
            if name is None:
                continue
            renamed = name != email.split("@", 1)[0]
            target = WantedGroup(google_email=email, name=name, renamed=renamed)
        chosen.setdefault(email, target)
    # Each Google group once; of those mapping to one name, exact ones first: the first
    # to land makes the group, and it belongs to the Google group it was made for (the
    # Directory's order chose it, and the others were dropped without a word).
    return sorted(chosen.values(), key=lambda t: (t.key, t.renamed, t.google_email))
