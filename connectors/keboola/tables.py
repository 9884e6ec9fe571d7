"""Keboola's table descriptions (``GET /v2/storage/tables/{id}`` and the bucket listings)
read into what the connector needs: columns with DuckDB types, key, size, last change.

Typed tables (native data types) describe each column in ``definition.columns`` with a
``basetype`` (STRING, INTEGER, NUMERIC, FLOAT, BOOLEAN, DATE, TIMESTAMP) and the backend's
``definition.type``/``length``; an alias (also every table of a linked bucket) may carry the
definition of its ``sourceTable`` instead. Columns of untyped tables are strings unless the
table's ``column_types`` option says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agnes_sync.connector import Column, SourceTable
from agnes_sync.errors import InvalidTableSpec
from agnes_sync.human_size import human_size
from agnes_sync.suggest import did_you_mean
from agnes_sync.table_spec import suggested_table_id
from agnes_sync.wide_decimals import too_wide
from connectors.keboola.answers import texts

_BASETYPES = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "FLOAT": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
}
_NUMBER_LENGTH = re.compile(r"^\s*(\d+)\s*(?:,\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class KeboolaTable:
    id: str  # e.g. in.c-main.orders
    bucket: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    rows: int | None
    size_bytes: int | None
    last_change: str | None
    created: str | None
    typed: bool
    description: str
    # Columns of decimals wider than DuckDB holds, published as their exact text, as the
    # sync's note names them (``amount NUMERIC(76,38)``).
    as_text: tuple[str, ...] = ()

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def select(self, names: Sequence[str] | None) -> tuple[Column, ...]:
        """The columns to export: ``names`` (in that order, each checked) or all."""
        if not names:
            return self.columns
        by_name = {c.name: c for c in self.columns}
        for name in names:
            if name not in by_name:
                raise InvalidTableSpec(
                    f"Keboola table {self.id} has no column '{name}'.",
                    hint=f"{did_you_mean(name, by_name)}Columns: {', '.join(by_name)}.",
                )
        return tuple(by_name[n] for n in names)


def table_id(bucket: str | None, source_table: str | None) -> str:
    """The Keboola table id a registration names: ``bucket`` + ``source_table``, or a
    full id (``in.c-main.orders``) in ``source_table``."""
    if not source_table:
        raise InvalidTableSpec(
            "A keboola table needs source_table (the table name, with bucket = its bucket id, "
            "or the full table id such as in.c-main.orders)."
        )
    if bucket:
        return f"{bucket}.{source_table}"
    if source_table.count(".") < 2:
        raise InvalidTableSpec(
            f"source_table '{source_table}' is not a full Keboola table id; "
            "give the bucket too (e.g. bucket in.c-main, source_table orders)."
        )
    return source_table


def bucket_of(table: str) -> str:
    return table.rsplit(".", 1)[0]


def parse_table(detail: Mapping[str, Any], overrides: Mapping[str, str] | None) -> KeboolaTable:
    """One table's detail (or an entry of a bucket's listing with ``include=columns``)."""
    ident = str(detail["id"])
    names = texts(detail.get("columns") or [], f"the columns of table {ident}")
    definition = _definition(detail)
    typed = bool(definition)
    columns = [_column(n, definition.get(n)) for n in names]
    as_text = [f"{n} NUMERIC({wide})" for n in names if (wide := _too_wide(definition.get(n)))]
    if overrides:
        known = set(names)
        for name in overrides:
            if name not in known:
                raise InvalidTableSpec(
                    f"column_types names '{name}', which Keboola table {ident} does not have.",
                    hint=f"{did_you_mean(name, names)}Columns: {', '.join(names)}.",
                )
        columns = [
            Column(c.name, overrides[c.name], c.nullable) if c.name in overrides else c
            for c in columns
        ]
        as_text = [named for named in as_text if named.split(" ", 1)[0] not in overrides]
    bucket = detail.get("bucket")
    bucket_id = (
        str(bucket["id"]) if isinstance(bucket, dict) and "id" in bucket else bucket_of(ident)
    )
    return KeboolaTable(
        id=ident,
        bucket=bucket_id,
        name=str(detail.get("name") or ident.rsplit(".", 1)[-1]),
        columns=tuple(columns),
        primary_key=tuple(texts(detail.get("primaryKey") or [], f"the primary key of {ident}")),
        rows=_int(detail.get("rowsCount")),
        size_bytes=_int(detail.get("dataSizeBytes")),
        last_change=detail.get("lastChangeDate"),
        created=detail.get("created"),
        typed=typed,
        description=_description(detail),
        as_text=tuple(as_text),
    )


def _definition(detail: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    definition = detail.get("definition")
    if not definition and isinstance(detail.get("sourceTable"), dict):
        definition = detail["sourceTable"].get("definition")
    if not isinstance(definition, dict):
        return {}
    return {
        str(c["name"]): c
        for c in definition.get("columns") or []
        if isinstance(c, dict) and "name" in c
    }


def _column(name: str, spec: Mapping[str, Any] | None) -> Column:
    if spec is None:
        return Column(name, "VARCHAR", True)
    native = spec.get("definition")
    native = native if isinstance(native, dict) else {}
    nullable = bool(native.get("nullable", True))
    return Column(name, duckdb_type(str(spec.get("basetype") or ""), native), nullable)


def duckdb_type(basetype: str, native: Mapping[str, Any]) -> str:
    """The DuckDB type of a typed column, from its Keboola basetype and native definition."""
    base = basetype.upper()
    kind = str(native.get("type") or "").upper()
    if base == "NUMERIC":
        match = _NUMBER_LENGTH.match(str(native.get("length") or ""))
        if match:
            precision, scale = int(match[1]), int(match[2] or 0)
            if too_wide(precision):
                return "VARCHAR"  # exact text: a DOUBLE keeps about 16 digits
            if precision > 0 and scale <= precision:
                return (
                    "BIGINT" if scale == 0 and precision <= 18 else f"DECIMAL({precision},{scale})"
                )
        return "DOUBLE"
    if base == "TIMESTAMP" and (
        kind.startswith(("TIMESTAMP_TZ", "TIMESTAMP_LTZ", "TIMESTAMPTZ")) or "TIME ZONE" in kind
    ):
        return "TIMESTAMPTZ"
    return _BASETYPES.get(base, "VARCHAR")


def _too_wide(spec: Mapping[str, Any] | None) -> str | None:
    """``p,s`` of a NUMERIC column wider than DuckDB's DECIMAL holds (None otherwise)."""
    if spec is None or str(spec.get("basetype") or "").upper() != "NUMERIC":
        return None
    native = spec.get("definition")
    length = str(native.get("length") or "") if isinstance(native, dict) else ""
    match = _NUMBER_LENGTH.match(length)
    if not match or not too_wide(int(match[1])):
        return None
    return f"{int(match[1])},{int(match[2] or 0)}"


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _description(detail: Mapping[str, Any]) -> str:
    for item in detail.get("metadata") or []:
        if isinstance(item, dict) and item.get("key") == "KBC.description" and item.get("value"):
            return str(item["value"])
    return ""


def source_tables(listing: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[SourceTable]:
    """Bucket listings as the admin's "register from source" list; an alias or a table of a
    linked bucket is listed like any other. Suggested ids are unique (a name found in several
    buckets is prefixed by its bucket)."""
    entries = [(b, t) for b, tables in listing for t in tables]
    seen: dict[str, int] = {}
    for _, item in entries:
        slug = suggested_table_id(str(item.get("name") or item["id"]))
        seen[slug] = seen.get(slug, 0) + 1
    found = []
    for bucket, item in entries:
        table = parse_table(item, None)
        slug = suggested_table_id(table.name)
        if seen[slug] > 1:
            slug = suggested_table_id(f"{bucket}_{table.name}")
        found.append(
            SourceTable(
                source_table=table.name,
                bucket=bucket,
                suggested_id=slug,
                description=_summary(table),
            )
        )
    return found


def _summary(table: KeboolaTable) -> str:
    facts = []
    if table.rows is not None:
        facts.append(f"{table.rows:,} rows")
    if table.size_bytes is not None:
        facts.append(human_size(table.size_bytes))
    if table.last_change:
        facts.append(f"changed {table.last_change}")
    summary = ", ".join(facts)
    if table.description:
        return f"{table.description} ({summary})" if summary else table.description
    return summary
