"""Compiling a metric request into one SELECT for the engine that holds the metric's table.

The query is built as a sqlglot tree (never by pasting strings): the definition's parts
are parsed in the flavor they were written in, assembled, and rendered in the target
dialect (DuckDB for server and workspace tables, BigQuery for BigQuery tables). Caller
filters are values, not SQL: ``{"channel": "web"}`` or ``{"channel": ["web", "store"]}``.
The result still goes through the SQL rails like any other query.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlglot
from pydantic import BaseModel, Field
from sqlglot import exp

from agnes_mcp.metrics.definition import GRAINS, MetricDefinition
from agnes_mcp.rails.refusals import QueryRefused, next_step

# A request's filters are bounded before anything is compiled from them: sqlglot builds
# and renders every value, so 900,000 of them took ~15 s of a core before the SQL size
# check refused the result.
MAX_FILTERS = 20  # dimensions filtered on
MAX_FILTER_VALUES = 1_000  # values of one dimension
MAX_VALUE_CHARS = 1_000  # characters of one value

FilterValue = (
    Annotated[str, Field(max_length=MAX_VALUE_CHARS)]
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
Filters = Annotated[
    dict[str, FilterValue | Annotated[list[FilterValue], Field(max_length=MAX_FILTER_VALUES)]],
    Field(max_length=MAX_FILTERS),
]


class MetricRequestInvalid(QueryRefused):
    code = "metric_request_invalid"
    status = 400


class TimeRange(BaseModel):
    start: dt.date | None = Field(default=None, description="First day included.")
    end: dt.date | None = Field(default=None, description="First day excluded.")


@dataclass
class MetricRequest:
    dimensions: list[str] = field(default_factory=list)
    filters: dict[str, FilterValue | list[FilterValue]] = field(default_factory=dict)  # Filters
    grain: str | None = None  # a grain, "total", or None for the metric's default
    time_range: TimeRange | None = None


@dataclass
class CompiledMetric:
    sql: str
    dialect: str
    variant: str  # expression | sql | sql_by_<dimension>


def compile_metric(
    metric: MetricDefinition,
    request: MetricRequest,
    dialect: str,
    columns: Collection[str] | None = None,
) -> CompiledMetric:
    """The one SELECT answering ``request``. ``columns``, the metric table's column names
    when known, let a dimension the table does not hold be refused with the way to ask
    for it (its own SQL, alone), instead of the engine's binder error."""
    check_request(metric, request)
    own_sql = len(request.dimensions) == 1 and request.dimensions[0] in metric.sql_by
    plain = not request.filters and not request.time_range
    # A sql_by_<dimension> query has whatever grain its SQL gives (often none): the
    # metric's grain describes its expression, so any grain asked for is not the SQL's.
    plain = plain and _grain_fits(metric, request)
    if metric.sql is not None or (own_sql and (plain or columns is None)):
        return _complete_sql(metric, request, dialect)
    if columns is not None:  # every dimension asked for must be a column expression here
        _check_columns(metric, request, {c.lower() for c in columns})
    return _from_expression(metric, request, dialect)


def _check_columns(metric: MetricDefinition, request: MetricRequest, columns: set[str]) -> None:
    """Refuse a dimension (asked for, or filtered on) that names a column the metric's
    table has not got: one served only by its own SQL (``sql_by_<name>``), or a broken
    definition."""
    known = {d.name: d for d in metric.dimensions}
    for name in dict.fromkeys([*request.dimensions, *request.filters]):
        tree = sqlglot.parse_one(known[name].sql(), dialect=metric.dialect)
        missing = [c.name for c in tree.find_all(exp.Column) if c.name.lower() not in columns]
        if not missing:
            continue
        if name in metric.sql_by:
            raise MetricRequestInvalid(
                f"{metric.id} is broken down by '{name}' only through its own SQL "
                f"(sql_by_{name}), alone: {metric.table} has no column '{missing[0]}' to "
                "combine it with other dimensions, filters, grains or time ranges.",
                hint=f"Ask for dimensions=['{name}'] with nothing else, or query the tables "
                "yourself from the SQL metric_show gives.",
                next=next_step("metric_show", f"agnes catalog --show {metric.id}", id=metric.id),
            )
        raise MetricRequestInvalid(
            f"{metric.id}'s dimension '{name}' reads '{missing[0]}', which {metric.table} "
            "has not got: the definition does not match the table.",
            hint="Tell an admin (the metric's definition needs fixing); other dimensions work.",
        )


def _grain_fits(metric: MetricDefinition, request: MetricRequest) -> bool:
    """Whether the grain asked for (if any) is what the metric's complete SQL answers: a
    ``sql`` metric's own grain; for a ``sql_by_`` breakdown, "total" when its query has
    no period (the metric's grain is its expression's, not the breakdown's)."""
    if request.grain is None:
        return True
    if metric.sql is not None:
        return request.grain == metric.grain
    own_sql = len(request.dimensions) == 1 and request.dimensions[0] in metric.sql_by
    return own_sql and request.grain == "total" and not _has_period(metric, request)


def _has_period(metric: MetricDefinition, request: MetricRequest) -> bool:
    """Whether the sql_by_ query of the one dimension asked for answers a ``period``
    column (its own grain), as an expression metric's query does."""
    sql = metric.sql_by[request.dimensions[0]]
    try:
        tree = sqlglot.parse_one(sql, dialect=metric.dialect)
    except sqlglot.errors.ParseError:
        return True  # cannot tell: no grain is taken for it
    names = [e.alias_or_name.lower() for e in tree.selects] if isinstance(tree, exp.Query) else []
    return not names or "period" in names or "*" in names


def check_request(metric: MetricDefinition, request: MetricRequest) -> None:
    """Refuse a request ``metric`` cannot answer, before any SQL is built: its size, a
    dimension the metric has not got, a grain that is none. A workspace checks it too
    before relaying the request to the server, so both answer alike."""
    _check_size(request)
    known = {d.name: d for d in metric.dimensions}
    unknown = [d for d in [*request.dimensions, *request.filters] if d not in known]
    if unknown:
        raise MetricRequestInvalid(
            f"{metric.id} has no dimension '{unknown[0]}'.",
            hint=f"Its dimensions: {', '.join(known) or 'none'}.",
            next=next_step("metric_show", f"agnes catalog --show {metric.id}", id=metric.id),
        )
    if request.grain is not None and request.grain not in (*GRAINS, "total"):
        raise MetricRequestInvalid(
            f"'{request.grain}' is not a grain.", hint=f"Use one of {', '.join(GRAINS)}, total."
        )


def _check_size(request: MetricRequest) -> None:
    """The bounds of :data:`Filters`, for callers that did not go through pydantic (the
    CLI, notebooks): checked in one pass, before any SQL is built."""
    problem = None
    if len(request.filters) > MAX_FILTERS:
        problem = f"at most {MAX_FILTERS} dimensions may be filtered on"
    for name, given in request.filters.items():
        values = given if isinstance(given, list) else [given]
        if len(values) > MAX_FILTER_VALUES:
            problem = f"'{name}' may take at most {MAX_FILTER_VALUES:,} values"
        elif any(isinstance(v, str) and len(v) > MAX_VALUE_CHARS for v in values):
            problem = f"a value of '{name}' is longer than {MAX_VALUE_CHARS:,} characters"
        elif any(isinstance(v, float) and not math.isfinite(v) for v in values):
            problem = f"a value of '{name}' is not a finite number"
        if problem:
            break
    if problem:
        raise MetricRequestInvalid(
            f"The filters are too large: {problem}.",
            hint="Filter on fewer values, or query the metric's tables with a join instead.",
        )


def _complete_sql(metric: MetricDefinition, request: MetricRequest, dialect: str) -> CompiledMetric:
    if request.filters or request.time_range or not _grain_fits(metric, request):
        what = (
            f"{metric.id} is defined by complete SQL"
            if metric.sql is not None
            else f"{metric.id}'s breakdown by {request.dimensions[0]} is its own SQL "
            f"(sql_by_{request.dimensions[0]})"
        )
        raise MetricRequestInvalid(
            f"{what}: filters, time ranges and grains other than its own do not apply.",
            hint="Call it without them, or query its tables yourself from the SQL it shows.",
        )
    if len(request.dimensions) == 1 and request.dimensions[0] in metric.sql_by:
        name = request.dimensions[0]
        text, variant = metric.sql_by[name], f"sql_by_{name}"
    elif request.dimensions:
        raise MetricRequestInvalid(
            f"{metric.id} has no SQL for a breakdown by {', '.join(request.dimensions)}.",
            hint=f"Breakdowns with SQL: {', '.join(metric.sql_by) or 'none'}.",
        )
    else:
        text, variant = metric.sql or "", "sql"
    tree = sqlglot.parse_one(text, dialect=metric.dialect)
    return CompiledMetric(tree.sql(dialect=dialect), dialect, variant)


def _from_expression(
    metric: MetricDefinition, request: MetricRequest, dialect: str
) -> CompiledMetric:
    source = metric.dialect
    grain = metric.grain if request.grain is None else request.grain
    grain = None if grain == "total" else grain
    if (grain or request.time_range) and not metric.time_column:
        raise MetricRequestInvalid(
            f"{metric.id} has no time column: it takes no grain or time range.",
            hint="Ask for it without a grain or time range (in the CLI: leave out --grain, "
            "--from and --to); its figure is over every row there is.",
        )
    selects: list[exp.Expr] = []
    if grain:
        selects.append(exp.alias_(_truncate(metric, grain), "period"))
    dimensions = {d.name: d for d in metric.dimensions}
    for name in request.dimensions:
        selects.append(exp.alias_(sqlglot.parse_one(dimensions[name].sql(), dialect=source), name))
    assert metric.expression is not None and metric.table is not None
    selects.append(exp.alias_(sqlglot.parse_one(metric.expression, dialect=source), metric.name))
    query = exp.select(*selects).from_(exp.to_table(metric.table))
    conditions = [sqlglot.condition(text, dialect=source) for text in metric.filters]
    for name, value in request.filters.items():
        conditions.append(_filter(sqlglot.parse_one(dimensions[name].sql(), dialect=source), value))
    if request.time_range is not None:
        conditions.extend(_time_range(metric, request.time_range, dialect))
    for condition in conditions:
        query = query.where(condition)
    grouped = len(selects) - 1
    if grouped:
        positions = [exp.Literal.number(i) for i in range(1, grouped + 1)]
        query = query.group_by(*positions).order_by(*[p.copy() for p in positions])
    return CompiledMetric(query.sql(dialect=dialect), dialect, "expression")


def _truncate(metric: MetricDefinition, grain: str) -> exp.Expr:
    column = sqlglot.parse_one(metric.time_column or "", dialect=metric.dialect)
    unit = exp.Var(this=grain.upper())
    if metric.time_column_type == "timestamp":
        return exp.TimestampTrunc(this=column, unit=unit)
    truncated = exp.DateTrunc(this=column, unit=unit)  # type: ignore[no-untyped-call]
    return exp.cast(truncated, "DATE")  # DuckDB's date_trunc of a DATE is a TIMESTAMP


def _literal(value: FilterValue) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _filter(column: exp.Expr, value: Any) -> exp.Expr:
    """``column`` matching ``value``, or any of a list's values; a null matches the rows
    where the column is NULL (SQL's ``= NULL`` and ``IN (NULL)`` match no row, which left
    them out of a list such as ``["web", null]`` without a word)."""
    if isinstance(value, list):
        known = [v for v in value if v is not None]
        matches: list[exp.Expr] = []
        if known:
            matches.append(exp.In(this=column.copy(), expressions=[_literal(v) for v in known]))
        if len(known) < len(value):
            matches.append(exp.Is(this=column.copy(), expression=exp.Null()))
        if not matches:
            return exp.false()
        return matches[0] if len(matches) == 1 else exp.paren(exp.or_(*matches))
    if value is None:
        return exp.Is(this=column, expression=exp.Null())
    return exp.EQ(this=column, expression=_literal(value))


def _time_range(metric: MetricDefinition, window: TimeRange, dialect: str) -> list[exp.Expr]:
    column = sqlglot.parse_one(metric.time_column or "", dialect=metric.dialect)
    kind = "DATE"
    if metric.time_column_type == "timestamp":  # BigQuery's TIMESTAMP is sqlglot's TIMESTAMPTZ
        kind = "TIMESTAMPTZ" if dialect == "bigquery" else "TIMESTAMP"
    out: list[exp.Expr] = []
    if window.start is not None:
        start = exp.cast(exp.Literal.string(window.start.isoformat()), kind)
        out.append(exp.GTE(this=column.copy(), expression=start))
    if window.end is not None:
        end = exp.cast(exp.Literal.string(window.end.isoformat()), kind)
        out.append(exp.LT(this=column.copy(), expression=end))
    if window.start and window.end and window.end <= window.start:
        raise MetricRequestInvalid(
            "time_range.end must be after time_range.start.",
            hint="end is the first day not counted: for all of 2025 give start 2025-01-01 "
            "and end 2026-01-01.",
        )
    return out
