"""How a metric is shown to its users: a one-line summary in lists, the full definition on
request. The same shapes in the REST API, the MCP tools and a workspace."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agnes_mcp.metrics.definition import MetricDefinition


class MetricSummary(BaseModel):
    id: str = Field(description="category/name")
    display_name: str
    category: str
    description: str
    unit: str | None
    grain: str | None
    tables: list[str]
    dimensions: list[str]

    @classmethod
    def of(cls, metric: MetricDefinition) -> MetricSummary:
        return cls.model_validate(metric.summary())


class MetricDetail(BaseModel):
    id: str
    summary: MetricSummary
    definition: dict[str, Any] = Field(description="The full definition as stored.")

    @classmethod
    def of(cls, metric: MetricDefinition) -> MetricDetail:
        return cls(
            id=metric.id,
            summary=MetricSummary.of(metric),
            definition=metric.model_dump(mode="json", exclude_defaults=True),
        )
