"""An engine's refusal of the SQL a metric compiled to, said in the caller's terms.

The caller of ``metric_query`` wrote no SQL: a value of the wrong type in a filter (a
number for a text dimension) or a definition that no longer fits its table made the
engine refuse SQL that Agnes wrote, and the answer said "Fix the query", a query the
caller never saw. The refusal now carries that SQL and points at what the caller chose.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from agnes_mcp.metrics.compiler import CompiledMetric
from agnes_mcp.rails.refusals import QueryFailed, next_step

COMPILED_HINT = (
    "The engine refused the SQL compiled from the metric and your request (details.sql): "
    "check that each filter value has its dimension's type (metric_show gives the "
    "dimensions); if the request is right, the definition is for an admin to fix."
)


@contextmanager
def compiled_metric_failures(metric_id: str, compiled: CompiledMetric) -> Iterator[None]:
    """Run the compiled SQL inside: an engine's refusal of it is re-said as above."""
    try:
        yield
    except QueryFailed as failed:
        details = {k: v for k, v in failed.details.items() if k != "next_step"}
        raise QueryFailed(
            failed.message,
            hint=COMPILED_HINT,
            next=next_step("metric_show", f"agnes metrics show {metric_id}", id=metric_id),
            details={**details, "sql": compiled.sql},
        ) from None
