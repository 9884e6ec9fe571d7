"""Resource types: every kind has a spec; parsing names suggests the close one."""

from __future__ import annotations

import pytest

from agnes_mcp.errors import UnknownResourceType
from agnes_mcp.resource_types import ResourceType, all_specs, parse_resource_type, spec_for


def test_every_member_has_exactly_one_spec() -> None:
    specs = all_specs()
    assert [s.type for s in specs] == list(ResourceType)
    for kind in ResourceType:
        assert spec_for(kind).type is kind and spec_for(kind).label and spec_for(kind).description


def test_parse_accepts_case_and_space_and_suggests() -> None:
    assert parse_resource_type(" TABLE ") is ResourceType.TABLE
    with pytest.raises(UnknownResourceType) as caught:
        parse_resource_type("tabel")
    assert "Did you mean 'table'" in (caught.value.hint or "")
    assert caught.value.status == 422


def test_grant_storage_needs_no_migration_for_a_new_kind() -> None:
    """The grants table stores the type as text: the schema names no resource types."""
    from agnes_mcp.store.migrate import available_migrations

    ddl = "\n".join(m.sql for m in available_migrations())
    grants_ddl = ddl[ddl.index("CREATE TABLE resource_grants") :].split(");", 1)[0]
    assert "resource_type VARCHAR NOT NULL" in grants_ddl
    for kind in ResourceType:
        assert f"'{kind.value}'" not in grants_ddl
