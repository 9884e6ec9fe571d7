"""Teaching the agent: the server instructions (the agent rails), prompts and resources.

The same rails text is what ``agnes init`` writes into a workspace's ``CLAUDE.md``. A
refusal while reading a resource becomes a resource error naming its code and message
(:mod:`agnes_mcp.mcp_server.errors`, installed here and with the tools).
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP

from agnes_mcp.agent_rails import AGENT_RAILS as AGENT_RAILS  # re-exported for the servers
from agnes_mcp.mcp_server import output_budget as ob
from agnes_mcp.mcp_server.errors import install_error_mapping
from agnes_mcp.mcp_server.tools import BackendFor
from agnes_mcp.rails.results import Truncation

CATALOG_RESOURCE_TABLES = 200  # the catalog resource's tables at most; the tool pages


def whole_json(payload: dict[str, Any], key: str, most: int, how_to_get_more: str) -> str:
    """``payload`` as JSON within the response ceiling, its list ``key`` cut to at most
    ``most`` entries and to what fits, and a cut said (``truncated``, ``truncation``,
    ``shown``): never JSON cut off mid-value, nor a list cut short in silence."""
    entries: list[Any] = payload[key]

    def shaped(count: int) -> dict[str, Any]:
        if count == len(entries):
            return {**payload, "truncated": False, "truncation": None}
        said = Truncation(
            reason="characters" if count < most else "page",
            how_to_get_more=f"Only the first {count:,} of {len(entries):,} {key} are here. "
            + how_to_get_more,
        )
        return {
            **payload,
            key: entries[:count],
            "shown": count,
            "truncated": True,
            "truncation": said.model_dump(),
        }

    count = ob.fit(min(most, len(entries)), lambda k: len(ob.dumps(shaped(k))), ob.CEILING_CHARS)
    return ob.dumps(shaped(count))


def register_guidance(mcp: FastMCP, backend_for: BackendFor) -> None:
    install_error_mapping(mcp)

    @mcp.prompt(title="Explore a table")
    def explore_table(table: str) -> str:
        """Learn one table before querying it: its schema, sample rows, and a first query."""
        return (
            f"Explore the table `{table}` with Agnes before answering anything about it.\n"
            f"1. Call `schema` with table='{table}' and note the types, the partition column "
            "and columns with many nulls.\n"
            f"2. Call `describe` with table='{table}', n=5 to see real values.\n"
            "3. Check its query mode in `catalog`: local/materialized -> `query`; remote -> "
            "`snapshot_estimate` first, then `query_remote` or `snapshot_create`.\n"
            "4. Summarise what one row means, the grain, useful filters and joins (keys "
            "shared with other tables), then run one small aggregate to confirm."
        )

    @mcp.prompt(title="Answer with a metric")
    def answer_with_metric(question: str) -> str:
        """Answer a business question with the company's metric definitions."""
        return (
            f"Answer this question with Agnes metrics: {question}\n"
            "1. Call `metrics_list` with search words from the question (synonyms match).\n"
            "2. Call `metric_show` on the best match; check its grain, dimensions, filters and "
            "notes fit the question.\n"
            "3. Call `metric_query` with the dimensions, filters, grain and time_range the "
            "question needs. Do not write your own metric SQL unless no definition fits — "
            "then say so.\n"
            "4. Answer with the numbers, the metric id, the SQL it ran and the data freshness."
        )

    @mcp.resource("agnes://catalog", title="Catalog", mime_type="application/json")
    def catalog_resource() -> str:
        """The tables and metrics you may use (the first 200 tables)."""
        listing = backend_for().catalog(None, None)
        payload = {
            "tables": [t.model_dump(mode="json") for t in listing.tables],
            "total_tables": len(listing.tables),
            "metrics": [m.model_dump(mode="json") for m in listing.metrics],
            "notes": listing.notes,
        }
        return whole_json(
            payload,
            "tables",
            CATALOG_RESOURCE_TABLES,
            "Call the catalog tool (paged: pass next_cursor back as cursor), or narrow it "
            "with search or query_mode.",
        )

    @mcp.resource(
        "agnes://tables/{table_id}/schema", title="Table schema", mime_type="application/json"
    )
    def schema_resource(table_id: str) -> str:
        """A table's columns, types and stats."""
        payload = backend_for().schema(table_id).model_dump(mode="json")
        return whole_json(
            payload,
            "columns",
            len(payload["columns"]),
            f"Call the schema tool with table={table_id!r} (paged: pass next_cursor back "
            "as cursor).",
        )

    @mcp.resource(
        "agnes://metrics/{category}/{name}", title="Metric definition", mime_type="application/json"
    )
    def metric_resource(category: str, name: str) -> str:
        """A metric's full definition."""
        return backend_for().metric_show(f"{category}/{name}").model_dump_json()
