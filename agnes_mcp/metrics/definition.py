"""A metric definition: the company's one agreed way to compute a number.

Written in YAML by admins (see ``docs/metrics.md``); SQL parts are in DuckDB flavor unless
``dialect`` says otherwise, and are compiled with sqlglot for the engine that holds the
table. A metric is either an aggregate ``expression`` over one ``table`` (then grain,
dimensions, filters and time ranges are applied by the compiler) or a complete ``sql``
query; ``sql_by_<dimension>`` gives a complete query for one breakdown.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import sqlglot
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from agnes_sync.sql_text import parse_problem

NAME = r"^[a-z][a-z0-9_]{0,62}$"
SQL_BY = re.compile(r"^sql_by_([a-z][a-z0-9_]*)$")
Grain = Literal["day", "week", "month", "quarter", "year"]
GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME, description="How callers name the breakdown.")
    column: str | None = Field(default=None, description="The column (default: the name).")
    expression: str | None = Field(default=None, description="Or an SQL expression.")
    description: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> Dimension:
        if self.column and self.expression:
            raise ValueError("give a column or an expression, not both")
        return self

    def sql(self) -> str:
        return self.expression or self.column or self.name


class Validation(BaseModel):
    """What a sane result looks like; the starter pack's tests check each metric with it."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    not_null: bool = True
    min_rows: int = Field(default=1, ge=0)


class MetricDefinition(BaseModel):
    model_config = ConfigDict(extra="allow")  # only sql_by_<dimension> (checked below)

    name: str = Field(pattern=NAME, description="Short name, unique within the category.")
    display_name: str = Field(min_length=1, max_length=200)
    category: str = Field(pattern=NAME, description="e.g. revenue, product, sales.")
    description: str = Field(min_length=1, max_length=4000)
    type: Literal["sum", "count", "count_distinct", "average", "ratio", "custom"]
    unit: str | None = Field(default=None, max_length=40, description="e.g. USD, %, hours.")
    grain: Grain | None = Field(default=None, description="Default time grain.")
    table: str | None = Field(default=None, description="The table the expression reads.")
    tables: list[str] = Field(default_factory=list, description="Tables a custom sql reads.")
    expression: str | None = Field(default=None, description="An aggregate SQL expression.")
    time_column: str | None = None
    time_column_type: Literal["date", "timestamp"] = "date"
    dimensions: list[Dimension] = Field(default_factory=list)
    filters: list[str] = Field(default_factory=list, description="Predicates always applied.")
    synonyms: list[str] = Field(default_factory=list)
    notes: str = ""
    sql: str | None = Field(default=None, description="A complete query instead.")
    dialect: Literal["duckdb", "bigquery"] = "duckdb"
    validation: Validation = Field(default_factory=Validation)

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"

    @property
    def all_tables(self) -> list[str]:
        names = ([self.table] if self.table else []) + self.tables
        return list(dict.fromkeys(names))

    @property
    def sql_by(self) -> dict[str, str]:
        """``sql_by_<dimension>`` variants, by dimension name."""
        found = {}
        for key, value in (self.model_extra or {}).items():
            match = SQL_BY.match(key)
            if match is not None:
                found[match[1]] = str(value)
        return found

    @field_validator("synonyms")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value if v.strip()]

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> MetricDefinition:
        # Importing (``context={"importing": True}``), the SQL also meets the rails; a
        # definition read back from the store, or relayed to a workspace, is not checked
        # again (one stored before a rule was added keeps working).
        problems = self._problems(importing=bool(info.context and info.context.get("importing")))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self, *, importing: bool = False) -> list[str]:
        """Every rule this definition breaks (all of them, so one import shows them all)."""
        problems: list[str] = []
        dimension_names = [d.name for d in self.dimensions]
        for key, value in (self.model_extra or {}).items():
            match = SQL_BY.match(key)
            if match is None:
                problems.append(f"unknown key '{key}'")
            elif match[1] not in dimension_names:
                problems.append(f"'{key}' names no dimension of this metric")
            elif not isinstance(value, str):
                problems.append(f"'{key}' must be SQL text")
            else:
                problems.extend(
                    _check(
                        lambda t=value, k=key: _check_select(
                            t, k, self.dialect, self.all_tables if importing else None
                        )
                    )
                )
        if self.sql is None and not (self.expression and self.table):
            problems.append("give 'expression' and 'table', or a complete 'sql'")
        if self.sql is not None and not self.all_tables:
            problems.append("a metric with 'sql' lists the tables it reads in 'tables'")
        if self.grain and not self.time_column and self.sql is None:
            problems.append("'grain' needs a 'time_column'")
        if len(dimension_names) != len(set(dimension_names)):
            problems.append("dimension names must be unique")
        if self.expression is not None:
            problems.extend(_check(lambda: _check_aggregate(self.expression or "", self.dialect)))
        for position, text in enumerate(self.filters):
            problems.extend(
                _check(
                    lambda t=text, p=position: _parse(
                        lambda x: sqlglot.condition(x, dialect=self.dialect), t, f"filters[{p}]"
                    )
                )
            )
        for dimension in self.dimensions:
            problems.extend(
                _check(
                    lambda d=dimension: _parse(
                        lambda x: sqlglot.parse_one(x, dialect=self.dialect),
                        d.sql(),
                        f"dimension {d.name}",
                    )
                )
            )
        if importing and self.sql is None and self.expression and self.table and not problems:
            problems.extend(_check(self._check_compiled))
        if self.sql is not None:
            problems.extend(
                _check(
                    lambda: _check_select(
                        self.sql or "", "sql", self.dialect, self.all_tables if importing else None
                    )
                )
            )
        return problems

    def _check_compiled(self) -> None:
        """The query the expression, filters and dimensions make passes the rails and
        reads only the listed tables (a filter's subquery, a function such as getenv)."""
        from agnes_mcp.metrics.compiler import MetricRequest, compile_metric

        dimensions = [d.name for d in self.dimensions if d.name not in self.sql_by]
        request = MetricRequest(dimensions=dimensions, grain="total")
        compiled = compile_metric(self, request, self.dialect)
        _check_select(
            compiled.sql, "the expression, filters or dimensions", self.dialect, self.all_tables
        )

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "category": self.category,
            "description": self.description,
            "unit": self.unit,
            "grain": self.grain,
            "tables": self.all_tables,
            "dimensions": [d.name for d in self.dimensions],
        }


def _check(step: Any) -> list[str]:
    """The problem ``step`` raises, as a list (empty when it passes)."""
    try:
        step()
    except ValueError as exc:
        return [str(exc)]
    return []


def _parse(parse: Any, text: str, where: str) -> exp.Expr:
    try:
        return parse(text)  # type: ignore[no-any-return]
    except (ParseError, TokenError) as exc:
        raise ValueError(f"{where} does not parse: {parse_problem(exc)}") from None


def _check_aggregate(text: str, dialect: str) -> None:
    tree = _parse(lambda t: sqlglot.parse_one(t, dialect=dialect), text, "expression")
    if not any(isinstance(node, exp.AggFunc) for node in tree.walk()):
        raise ValueError("'expression' must aggregate (e.g. sum(amount), count(*))")
    if any(isinstance(node, (exp.Select, exp.Subquery)) for node in tree.walk()):
        raise ValueError("'expression' may not hold a subquery; use 'sql' for that")


def _check_select(text: str, where: str, dialect: str, tables: list[str] | None) -> None:
    """One SELECT; with ``tables`` (importing), one the rails accept (read-only, allowed
    functions: a metric no one could ever run is refused at import, not at every query),
    reading only the tables the definition lists (its grants follow them)."""
    from agnes_mcp.rails.checked_parse import parse_checked
    from agnes_mcp.rails.refusals import QueryRefused

    tree = _parse(lambda t: sqlglot.parse_one(t, dialect=dialect), text, where)
    if not isinstance(tree, exp.Query):
        raise ValueError(f"{where} must be one SELECT")
    if tables is None:
        return
    try:
        parsed = parse_checked(text, dialect)
    except QueryRefused as refused:
        raise ValueError(f"{where} would be refused: {refused.message}") from None
    listed = {t.lower() for t in tables}
    for ref in parsed.refs:
        if not ref.qualified and ref.name.lower() not in listed:
            raise ValueError(
                f"{where} reads '{ref.name}', which the metric does not list "
                f"(list it in 'tables': {', '.join([*tables, ref.name])})"
            )
