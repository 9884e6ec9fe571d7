"""A Jira issue (REST v3 JSON) as rows of the four tables.

Field names are Jira Cloud's: ``fields.summary``, ``fields.status.name``, ``fields.comment``
(a page of comments), ``changelog.histories[].items[]``, ``fields.issuelinks[]`` with an
``inwardIssue`` or ``outwardIssue``. Rich text (Atlassian Document Format) becomes plain
text. Keys are validated before anything else, since they later name nothing on disk but
are the join key analysts use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from agnes_sync.errors import SourceDataError
from connectors.jira.tables import CHANGELOG, COMMENTS, DELETED, ISSUELINKS, ISSUES

ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9]{0,31}-[0-9]{1,12}$")
ISSUE_ID = re.compile(r"^[0-9]{1,18}$")
# ADF's inline nodes; every other node (paragraph, list and task items, decisions, media
# groups and captions, cards, expands, panels, rows, extensions, nodes added later) is a
# block, ended by a line break, and a table cell by a tab.
_INLINE = frozenset(
    {
        "text",
        "hardBreak",
        "mention",
        "emoji",
        "date",
        "status",
        "inlineCard",
        "mediaInline",
        "placeholder",
        "inlineExtension",
    }
)
_CELLS = frozenset({"tableCell", "tableHeader"})

Row = dict[str, Any]


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def valid_key(value: object) -> str | None:
    return value if isinstance(value, str) and ISSUE_KEY.match(value) else None


def valid_id(value: object) -> str | None:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return text if ISSUE_ID.match(text) else None


def project_of(key: str) -> str:
    return key.rsplit("-", 1)[0]


def parse_time(value: object) -> datetime | None:
    """Jira's ``2024-01-15T10:30:00.000+0000`` as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def adf_text(value: object) -> str | None:
    """Plain text of an Atlassian Document Format node (or a plain string, as v2 sends)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    parts: list[str] = []
    try:
        _walk(value, parts)
    except RecursionError:  # nested about as deep as Jira's answer could be read
        raise SourceDataError("A rich text field nests too deeply to read.") from None
    return "".join(parts).strip() or None


def _walk(node: object, out: list[str]) -> None:
    if isinstance(node, list):
        for child in node:
            _walk(child, out)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    attrs = obj(node.get("attrs"))
    if kind == "text":
        out.append(str(node.get("text", "")))
    elif kind == "hardBreak":
        out.append("\n")
    elif kind == "date":
        out.append(_adf_day(attrs.get("timestamp")))
    elif kind in ("mention", "emoji", "status"):
        out.append(str(attrs.get("text") or attrs.get("shortName") or ""))
    elif kind in ("inlineCard", "blockCard", "embedCard"):
        out.append(str(attrs.get("url") or obj(attrs.get("data")).get("url") or ""))
    elif kind in ("expand", "nestedExpand") and attrs.get("title"):
        out.extend((str(attrs["title"]), "\n"))
    elif kind in _CELLS:  # a cell on one line, whatever blocks it holds
        inner: list[str] = []
        _walk(node.get("content"), inner)
        out.append(" ".join("".join(inner).split()) + "\t")
        return
    _walk(node.get("content"), out)
    if kind in _INLINE or kind == "doc" or not out:
        return
    if out[-1].endswith("\t"):  # the row's last cell
        out[-1] = out[-1][:-1]
    if not out[-1].endswith("\n"):
        out.append("\n")


def _adf_day(timestamp: object) -> str:
    """An ADF date node's day: its ``timestamp`` is milliseconds since the epoch (UTC)."""
    try:
        return datetime.fromtimestamp(int(str(timestamp)) / 1000, UTC).date().isoformat()
    except (ValueError, OverflowError, OSError):
        return str(timestamp or "")


def _name(value: object, key: str = "name") -> str | None:
    if isinstance(value, dict):
        found = value.get(key)
        return str(found) if found is not None else None
    return None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass
class IssueSnapshot:
    """One issue's rows, ready to upsert into its month's shards."""

    issue_id: str
    key: str
    updated: datetime | None
    month: str
    rows: dict[str, list[Row]] = field(default_factory=dict)


def snapshot(
    issue: dict[str, Any],
    *,
    comments: list[dict[str, Any]],
    histories: list[dict[str, Any]],
    synced_at: datetime,
    keep_restricted: bool = False,
) -> IssueSnapshot:
    """The rows of ``issue`` (a ``GET /rest/api/3/issue/{key}`` answer), with its full
    comment and changelog lists fetched beside it. Comments Jira restricts (to a role or
    group, or a service desk's internal notes) are left out unless ``keep_restricted``."""
    key = valid_key(issue.get("key"))
    issue_id = valid_id(issue.get("id"))
    fields = obj(issue.get("fields"))
    created = parse_time(fields.get("created"))
    if key is None or issue_id is None or created is None:
        raise SourceDataError(
            "Jira returned an issue without a valid key, id or created time "
            f"(key {str(issue.get('key'))[:40]!r}, id {str(issue.get('id'))[:20]!r}).",
            hint="Issue keys must look like PROJ-123; check the site URL in the source's options.",
        )
    month = created.strftime("%Y-%m")
    tail = {"created_month": month, "synced_at": synced_at}
    assignee, reporter = fields.get("assignee"), fields.get("reporter")
    custom = {
        k: v
        for k, v in sorted(fields.items())
        if k.startswith("customfield_") and v not in (None, "", [], {})
    }
    labels = fields.get("labels")
    issue_row: Row = {
        "issue_id": int(issue_id),
        "key": key,
        "project_key": _name(fields.get("project"), "key") or project_of(key),
        "summary": _text(fields.get("summary")),
        "description": adf_text(fields.get("description")),
        "issue_type": _name(fields.get("issuetype")),
        "status": _name(fields.get("status")),
        "status_category": _name(obj(fields.get("status")).get("statusCategory")),
        "priority": _name(fields.get("priority")),
        "resolution": _name(fields.get("resolution")),
        "assignee_account_id": _name(assignee, "accountId"),
        "assignee_name": _name(assignee, "displayName"),
        "reporter_account_id": _name(reporter, "accountId"),
        "reporter_name": _name(reporter, "displayName"),
        "labels": [str(x) for x in labels] if isinstance(labels, list) else None,
        "parent_key": _name(fields.get("parent"), "key"),
        "created": created,
        "updated": parse_time(fields.get("updated")),
        "resolved": parse_time(fields.get("resolutiondate")),
        "due_date": _date(fields.get("duedate")),
        "custom_fields": json.dumps(custom, sort_keys=True, default=str) if custom else None,
        "custom_field_names": _names_of(custom, issue.get("names")),
        **tail,
    }
    own = {"issue_id": int(issue_id), "issue_key": key}
    return IssueSnapshot(
        issue_id=issue_id,
        key=key,
        updated=issue_row["updated"],
        month=month,
        rows={
            ISSUES: [issue_row],
            COMMENTS: [
                _comment(c, own, tail)
                for c in comments
                if isinstance(c, dict) and (keep_restricted or not _restricted(c))
            ],
            CHANGELOG: [
                row for h in histories if isinstance(h, dict) for row in _history(h, own, tail)
            ],
            ISSUELINKS: [
                row
                for link in fields.get("issuelinks") or []
                if isinstance(link, dict)
                for row in _link(link, own, tail)
            ],
            DELETED: [],
        },
    )


def tombstone(
    *,
    issue_id: str,
    key: str,
    month: str,
    created: datetime | None,
    updated: datetime | None,
    summary: str | None,
    detected_by: str,
    now: datetime,
) -> Row:
    """The ``deleted_issues`` row of an issue deleted in Jira."""
    return {
        "issue_id": int(issue_id),
        "key": key,
        "project_key": project_of(key),
        "summary": summary,
        "created": created,
        "updated": updated,
        "deleted_at": now,
        "detected_by": detected_by,
        "created_month": month,
        "synced_at": now,
    }


def _visibility(comment: dict[str, Any]) -> str | None:
    """``role:Developers`` or ``group:jira-admins`` for a comment Jira restricts."""
    seen = obj(comment.get("visibility"))
    if not seen:
        return None
    kind, value = seen.get("type"), seen.get("value") or seen.get("identifier")
    return f"{kind or 'restricted'}:{value}" if value else str(kind or "restricted")


def _restricted(comment: dict[str, Any]) -> bool:
    return _visibility(comment) is not None or comment.get("jsdPublic") is False


def _comment(comment: dict[str, Any], own: Row, tail: Row) -> Row:
    author = comment.get("author")
    public = comment.get("jsdPublic")
    return {
        **own,
        "comment_id": str(comment.get("id")),
        "author_account_id": _name(author, "accountId"),
        "author_name": _name(author, "displayName"),
        "body": adf_text(comment.get("body")),
        "created": parse_time(comment.get("created")),
        "updated": parse_time(comment.get("updated")),
        "visibility": _visibility(comment),
        "jsd_public": public if isinstance(public, bool) else None,
        **tail,
    }


def _history(history: dict[str, Any], own: Row, tail: Row) -> list[Row]:
    author = history.get("author")
    base = {
        **own,
        "history_id": str(history.get("id")),
        "author_account_id": _name(author, "accountId"),
        "author_name": _name(author, "displayName"),
        "created": parse_time(history.get("created")),
    }
    return [
        {
            **base,
            "item_index": index,
            "field": _text(item.get("field")),
            "field_type": _text(item.get("fieldtype")),
            "field_id": _text(item.get("fieldId")),
            "from_value": _text(item.get("from")),
            "from_string": _text(item.get("fromString")),
            "to_value": _text(item.get("to")),
            "to_string": _text(item.get("toString")),
            **tail,
        }
        for index, item in enumerate(history.get("items") or [])
        if isinstance(item, dict)
    ]


def _link(link: dict[str, Any], own: Row, tail: Row) -> list[Row]:
    kind = obj(link.get("type"))
    rows = []
    for direction, side in (("outward", "outwardIssue"), ("inward", "inwardIssue")):
        other = link.get(side)
        if not isinstance(other, dict):
            continue
        rows.append(
            {
                **own,
                "link_id": str(link.get("id")),
                "link_type": _text(kind.get("name")),
                "direction": direction,
                "relation": _text(kind.get(direction)),
                "linked_issue_id": _int(valid_id(other.get("id"))),
                "linked_issue_key": valid_key(other.get("key")),
                **tail,
            }
        )
    return rows


def _names_of(custom: dict[str, Any], names: object) -> str | None:
    """The site's name of each custom field in ``custom`` (``expand=names``), as JSON
    ``{"customfield_10016": "Story point estimate"}``: what an analyst searches by."""
    if not custom or not isinstance(names, dict):
        return None
    found = {k: str(names[k]) for k in custom if isinstance(names.get(k), str) and names[k]}
    return json.dumps(found, sort_keys=True) if found else None
