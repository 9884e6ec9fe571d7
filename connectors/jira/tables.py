"""The four tables a Jira source publishes: their kinds, Arrow schemas and descriptions.

Every row carries its issue's ``issue_id`` (Jira's numeric id: stable when an issue moves
to another project and its key changes) and ``created_month`` (``YYYY-MM``, the month the
issue was created, UTC): all the rows of one issue live in the same monthly shard of each
table.

The four issue tables hold what Jira holds now. An issue deleted in Jira leaves them with
all its rows, and its tombstone (id, key, when, found how) goes to ``deleted_issues``: a
query of the issue tables never needs ``WHERE NOT deleted``, and the deletions stay known
(also to the store, so a late, stale copy of a deleted issue never brings it back).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from agnes_sync.connector import Column

TS = pa.timestamp("us", tz="UTC")
ISSUES, COMMENTS, CHANGELOG, ISSUELINKS = "issues", "comments", "changelog", "issuelinks"
DELETED = "deleted_issues"
KINDS = (ISSUES, COMMENTS, CHANGELOG, ISSUELINKS, DELETED)

_COMMON_TAIL = [
    pa.field("created_month", pa.string(), nullable=False),
    pa.field("synced_at", TS, nullable=False),
]

SCHEMAS: dict[str, pa.Schema] = {
    ISSUES: pa.schema(
        [
            pa.field("issue_id", pa.int64(), nullable=False),
            pa.field("key", pa.string(), nullable=False),
            pa.field("project_key", pa.string()),
            pa.field("summary", pa.string()),
            pa.field("description", pa.string()),
            pa.field("issue_type", pa.string()),
            pa.field("status", pa.string()),
            pa.field("status_category", pa.string()),
            pa.field("priority", pa.string()),
            pa.field("resolution", pa.string()),
            pa.field("assignee_account_id", pa.string()),
            pa.field("assignee_name", pa.string()),
            pa.field("reporter_account_id", pa.string()),
            pa.field("reporter_name", pa.string()),
            pa.field("labels", pa.list_(pa.string())),
            pa.field("parent_key", pa.string()),
            pa.field("created", TS),
            pa.field("updated", TS),
            pa.field("resolved", TS),
            pa.field("due_date", pa.date32()),
            pa.field("custom_fields", pa.string()),  # JSON object of non-empty customfield_*
            pa.field("custom_field_names", pa.string()),  # JSON: customfield_* -> its name
            *_COMMON_TAIL,
        ]
    ),
    COMMENTS: pa.schema(
        [
            pa.field("issue_id", pa.int64(), nullable=False),
            pa.field("issue_key", pa.string(), nullable=False),
            pa.field("comment_id", pa.string(), nullable=False),
            pa.field("author_account_id", pa.string()),
            pa.field("author_name", pa.string()),
            pa.field("body", pa.string()),
            pa.field("created", TS),
            pa.field("updated", TS),
            pa.field("visibility", pa.string()),
            pa.field("jsd_public", pa.bool_()),
            *_COMMON_TAIL,
        ]
    ),
    CHANGELOG: pa.schema(
        [
            pa.field("issue_id", pa.int64(), nullable=False),
            pa.field("issue_key", pa.string(), nullable=False),
            pa.field("history_id", pa.string(), nullable=False),
            pa.field("item_index", pa.int32(), nullable=False),
            pa.field("author_account_id", pa.string()),
            pa.field("author_name", pa.string()),
            pa.field("created", TS),
            pa.field("field", pa.string()),
            pa.field("field_type", pa.string()),
            pa.field("field_id", pa.string()),
            pa.field("from_value", pa.string()),
            pa.field("from_string", pa.string()),
            pa.field("to_value", pa.string()),
            pa.field("to_string", pa.string()),
            *_COMMON_TAIL,
        ]
    ),
    ISSUELINKS: pa.schema(
        [
            pa.field("issue_id", pa.int64(), nullable=False),
            pa.field("issue_key", pa.string(), nullable=False),
            pa.field("link_id", pa.string(), nullable=False),
            pa.field("link_type", pa.string()),
            pa.field("direction", pa.string()),  # outward: this issue <outward> the linked one
            pa.field("relation", pa.string()),  # e.g. "blocks", "is blocked by"
            pa.field("linked_issue_id", pa.int64()),
            pa.field("linked_issue_key", pa.string()),
            *_COMMON_TAIL,
        ]
    ),
    DELETED: pa.schema(
        [
            pa.field("issue_id", pa.int64(), nullable=False),
            pa.field("key", pa.string(), nullable=False),
            pa.field("project_key", pa.string()),
            pa.field("summary", pa.string()),  # as last known
            pa.field("created", TS),
            pa.field("updated", TS),  # the last change known before the deletion
            pa.field("deleted_at", TS, nullable=False),  # when Agnes learnt of it
            pa.field("detected_by", pa.string(), nullable=False),  # webhook | census
            *_COMMON_TAIL,
        ]
    ),
}

DESCRIPTIONS = {
    ISSUES: "Jira issues: one row per issue, its current fields.",
    COMMENTS: "Jira comments: one row per comment of each issue, the body as plain text.",
    CHANGELOG: "Jira changelog: one row per changed field of each history entry.",
    ISSUELINKS: "Jira issue links: one row per link, seen from each issue it touches.",
    DELETED: "Jira issues deleted (tombstones): gone from the other Jira tables, with their rows.",
}

# Order of rows inside a shard (stable files: the same rows give the same bytes).
SORT_KEYS: dict[str, list[str]] = {
    ISSUES: ["issue_id"],
    COMMENTS: ["issue_id", "comment_id"],
    CHANGELOG: ["issue_id", "history_id", "item_index"],
    ISSUELINKS: ["issue_id", "link_id", "direction"],
    DELETED: ["issue_id"],
}

_DUCKDB_TYPES = {
    str(pa.string()): "VARCHAR",
    str(pa.bool_()): "BOOLEAN",
    str(pa.int32()): "INTEGER",
    str(pa.int64()): "BIGINT",
    str(pa.date32()): "DATE",
    str(TS): "TIMESTAMP WITH TIME ZONE",
    str(pa.list_(pa.string())): "VARCHAR[]",
}


@dataclass(frozen=True)
class TableNames:
    """The published table names of one source: ``<prefix><kind>``."""

    prefix: str

    def of(self, kind: str) -> str:
        return f"{self.prefix}{kind}"

    def all(self) -> dict[str, str]:
        """kind -> table name."""
        return {kind: self.of(kind) for kind in KINDS}

    def kind_of(self, table: str) -> str | None:
        return next((k for k, name in self.all().items() if name == table), None)


def columns(kind: str) -> list[Column]:
    return [Column(f.name, _DUCKDB_TYPES[str(f.type)], f.nullable) for f in SCHEMAS[kind]]
