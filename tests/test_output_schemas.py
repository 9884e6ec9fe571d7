"""Tool output schemas with their references inlined and their single-type ``anyOf``s
merged accept and refuse exactly what pydantic's own schema does, and keep a reference
only where a definition recurses."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from agnes_mcp.mcp_server.output_schemas import (
    answer_or_refusal,
    merge_type_unions,
    output_schema,
)
from agnes_mcp.mcp_server.tool_models import (
    CatalogOutput,
    QueryOutput,
    SnapshotInfo,
    SnapshotListOutput,
)

JSON_TYPES = ["string", "integer", "number", "boolean", "array", "object", "null"]
# A value of each JSON type (nested ones too), a one-letter string, zero, a date-time.
SAMPLES: list[Any] = [
    "text",
    "a",
    0,
    "2026-11-29T12:00:00Z",
    7,
    2.5,
    True,
    None,
    [],
    [1, "a", None, [2.5, {"k": False}]],
    {},
    {"k": [1, {"deep": None}]},
]


class _Constrained(BaseModel):
    """Branches with keywords of their own type, and one pair that must not merge (an
    integer's minimum would bind numbers too)."""

    ids: list[int] | None
    code: Annotated[str, Field(min_length=2)] | None
    size: Annotated[int, Field(ge=1)] | float
    choice: Literal["x", "y"] | int


class _Leaf(BaseModel):
    name: str


class _Branch(BaseModel):
    leaf: _Leaf
    twigs: list[_Twig] = []


class _Twig(BaseModel):
    branch: _Branch | None = None
    leaves: list[_Leaf] = []


def _refs(node: Any) -> set[str]:
    text = json.dumps(node)
    return {part.split('"')[0] for part in text.split('"$ref": "#/$defs/')[1:]}


ROW_ANSWER: dict[str, Any] = {
    "columns": [{"name": "a", "type": "STRUCT"}, {"name": "b", "type": "BIGINT"}],
    "rows": [[{"k": [1, 2.5, None, {"deep": ["x", True]}]}, 3], ["text", None]],
    "row_count": 2,
    "truncated": False,
    "bytes_scanned": 0,
    "shown_rows": 2,
    "provenance": {
        "tables": [{"id": "t", "query_mode": "local", "source": "files", "freshness": None}],
        "engine": "duckdb",
        "bytes_scanned": 0,
        "row_count": 2,
        "duration_ms": 1.0,
        "fingerprint": "f",
    },
}


def _bad_answers() -> list[dict[str, Any]]:
    no_rows = {k: v for k, v in ROW_ANSWER.items() if k != "rows"}
    row_not_list = {**ROW_ANSWER, "rows": ["not a row"]}
    bad_column = {**ROW_ANSWER, "columns": [{"name": "a"}]}
    bad_table = json.loads(json.dumps(ROW_ANSWER))
    bad_table["provenance"]["tables"][0]["freshness"] = 7
    return [no_rows, row_not_list, bad_column, bad_table]


@pytest.mark.parametrize("model", [QueryOutput, CatalogOutput, _Branch])
def test_only_recursive_definitions_stay_references(model: type[BaseModel]) -> None:
    schema = output_schema(model)
    kept = set(schema.get("$defs", {}))
    assert _refs(schema) <= kept
    assert schema["properties"]  # the model's own fields are still described
    Draft202012Validator.check_schema(schema)


def test_a_row_cell_is_inlined_where_used_and_kept_for_nesting() -> None:
    schema = output_schema(QueryOutput)
    assert set(schema["$defs"]) == {"Cell"}
    cell = schema["properties"]["rows"]["items"]["items"]
    assert "$ref" not in cell and "anyOf" not in cell
    assert cell["type"] == JSON_TYPES  # typed: every JSON type, one keyword to check
    assert cell["items"] == cell["additionalProperties"] == {"$ref": "#/$defs/Cell"}
    assert schema["$defs"]["Cell"] == cell
    optional = schema["properties"]["total_rows"]
    assert optional["type"] == ["integer", "null"] and "anyOf" not in optional
    # an optional choice, and an optional model (its title no longer keeps it apart)
    choice = schema["properties"]["reason"]
    assert choice["type"] == ["string", "null"] and choice["enum"] == ["rows", "bytes", None]
    assert schema["properties"]["truncation"]["type"] == ["object", "null"]


@pytest.mark.parametrize(
    "branches",
    [
        [{"type": "string", "enum": ["a"]}, {"type": "integer"}],  # the enum would bind 1
        [{"type": "string", "enum": ["a"]}, {"type": "null"}, {"type": "integer"}],
        [{"type": "string", "enum": ["a"]}, {"type": "integer", "enum": [1]}],
    ],
)
def test_an_enum_merges_beside_null_only(branches: list[dict[str, Any]]) -> None:
    schema = {"anyOf": branches}
    assert merge_type_unions(schema) == schema


def _variants(value: Any) -> list[Any]:
    """``value`` with each of its leaves (and each whole list or object) replaced in turn
    by every sample."""
    found = [sample for sample in SAMPLES if sample != value]
    if isinstance(value, dict):
        for key, item in value.items():
            found += [{**value, key: other} for other in _variants(item)]
            found.append({k: v for k, v in value.items() if k != key})
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += [[*value[:index], other, *value[index + 1 :]] for other in _variants(item)]
    return found


SNAPSHOT: dict[str, Any] = {
    "name": "s",
    "table_id": "t",
    "select": ["a"],
    "where": None,
    "rows": 1,
    "bytes": 2,
    "bytes_scanned": 3,
    "truncated": False,
    "created_at": "2026-11-29T12:00:00Z",
    "expires_at": None,
    "sql": "SELECT 1",
    "location": "server",
}


@pytest.mark.parametrize(
    ("model", "answer"),
    [
        (QueryOutput, ROW_ANSWER),
        (
            QueryOutput,  # the optional choices and the optional nested model, set
            {
                **ROW_ANSWER,
                "reason": "rows",
                "row_limit_source": None,
                "truncation": {"reason": "rows", "how_to_get_more": "Ask for more."},
            },
        ),
        (SnapshotInfo, SNAPSHOT),
        (SnapshotListOutput, {"snapshots": [SNAPSHOT]}),
        (_Constrained, {"ids": [1, 2], "code": "ab", "size": 3, "choice": "x"}),
    ],
)
def test_every_variant_of_an_answer_is_judged_as_the_original_judges_it(
    model: type[BaseModel], answer: dict[str, Any]
) -> None:
    """Every field of a valid answer given a value of every JSON type, or left out."""
    original = Draft202012Validator(
        model.model_json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    ours = Draft202012Validator(
        output_schema(model), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    variants = _variants(answer)
    verdicts = [original.is_valid(v) for v in variants]
    assert original.is_valid(answer) and True in verdicts and False in verdicts
    assert [ours.is_valid(v) for v in variants] == verdicts


def test_the_inlined_schema_accepts_and_refuses_what_the_original_does() -> None:
    original = Draft202012Validator(QueryOutput.model_json_schema())
    inlined = Draft202012Validator(output_schema(QueryOutput))
    assert original.is_valid(ROW_ANSWER) and inlined.is_valid(ROW_ANSWER)
    for bad in _bad_answers():
        assert not original.is_valid(bad)
        assert not inlined.is_valid(bad)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        # a constraint beside the anyOf would read the branch's keyword differently
        (
            {
                "properties": {"a": {}},
                "anyOf": [{"type": "object", "additionalProperties": False}, {"type": "null"}],
            },
            {"a": 1},
        ),
        (
            {"prefixItems": [{}], "anyOf": [{"type": "array", "items": False}, {"type": "null"}]},
            [1],
        ),
    ],
)
def test_an_anyof_beside_a_constraint_is_left_as_it_is(schema: dict[str, Any], value: Any) -> None:
    ours = merge_type_unions(schema)
    assert ours == schema
    assert Draft202012Validator(ours).is_valid(value) == Draft202012Validator(schema).is_valid(
        value
    )


def test_values_that_look_like_schemas_are_left_as_they_are() -> None:
    lookalike = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    schema = {"type": "object", "default": lookalike, "examples": [lookalike]}
    assert merge_type_unions(schema) == schema


def test_mutually_recursive_models_keep_both_definitions() -> None:
    schema = output_schema(_Branch)
    assert set(schema["$defs"]) == {"_Branch", "_Twig"}
    assert "_Leaf" not in schema["$defs"]  # not recursive: inlined everywhere
    validator = Draft202012Validator(schema)
    deep = {"leaf": {"name": "a"}, "twigs": [{"branch": {"leaf": {"name": "b"}}}]}
    assert validator.is_valid(deep)
    assert not validator.is_valid({"leaf": {"name": "a"}, "twigs": [{"branch": {"leaf": 1}}]})


class _Titled(BaseModel):
    title: str  # a field named "title" is a property, not the keyword
    properties: dict[str, int] = Field(default_factory=dict)
    notes: Annotated[list[str], Field(description="kept")] = Field(default_factory=list)
    example: dict[str, Any] = Field(default={"title": "a value, not a keyword"})


def _keywords(node: Any, *, names: bool = False) -> set[str]:
    """Every keyword used by a schema in ``node`` (property and definition names aside)."""
    if isinstance(node, list):
        return set().union(*(_keywords(item) for item in node))
    if not isinstance(node, dict):
        return set()
    if names:
        return set().union(*(_keywords(value) for value in node.values()))
    found = set(node)
    for key, value in node.items():
        if key not in ("default", "examples", "const", "enum"):
            found |= _keywords(value, names=key in ("properties", "$defs"))
    return found


@pytest.mark.parametrize("model", [QueryOutput, CatalogOutput, SnapshotListOutput, _Titled])
def test_no_schema_carries_a_title_keyword(model: type[BaseModel]) -> None:
    """pydantic's titles ("Row Count" for row_count) are dropped from every output schema;
    a property named "title", descriptions and values are kept, and the schema still
    accepts and refuses what pydantic's own does."""
    ours = output_schema(model)
    assert "title" in _keywords(model.model_json_schema())
    assert "title" not in _keywords(ours)
    assert "description" in _keywords(ours)
    if model is _Titled:
        assert set(ours["properties"]) == {"title", "properties", "notes", "example"}
        assert ours["properties"]["example"]["default"] == {"title": "a value, not a keyword"}
        validator, original = (
            Draft202012Validator(ours),
            Draft202012Validator(model.model_json_schema()),
        )
        for value in ({"title": "x"}, {"title": 1}, {}, {"title": "x", "properties": {"a": "b"}}):
            assert validator.is_valid(value) == original.is_valid(value)


class _Answer(BaseModel):
    name: str
    count: int
    note: str | None = None


def test_a_tool_schema_takes_the_whole_answer_or_a_refusal_alone() -> None:
    schema = answer_or_refusal(_Answer)
    Draft202012Validator.check_schema(schema)
    check = Draft202012Validator(schema)
    assert set(schema["properties"]) == {"name", "count", "note", "error"}
    assert check.is_valid({"name": "a", "count": 1})
    assert check.is_valid({"error": {"code": "table_not_found", "message": "m", "hint": None}})
    assert not check.is_valid({"name": "a"})  # half an answer is still refused
    assert not check.is_valid({"name": "a", "count": "1"})
    assert not check.is_valid({"error": {"message": "no code"}})
    assert not check.is_valid({})


def test_an_answer_may_not_have_a_field_named_error() -> None:
    class Clash(BaseModel):
        error: str

    with pytest.raises(ValueError, match="error"):
        answer_or_refusal(Clash)
