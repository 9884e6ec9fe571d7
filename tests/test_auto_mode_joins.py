"""A query in ``auto`` mode (the REST API's default, and every estimate) that joins a remote
table with another name.

Such a query was refused as ``mixed_engines`` as soon as one name was not remote, before
any name was resolved or checked: a typo (a table that does not exist) was told to take a
snapshot, and a caller not granted the remote table got a ready ``snapshot_create`` of it,
naming its partition column and the last week of data it holds. Each side is now resolved
and checked first, as a query of one engine is.
"""

from __future__ import annotations

import time

import pytest

from agnes_mcp.auth.principal import Principal
from agnes_mcp.rails.refusals import QueryRefused
from agnes_mcp.resource_types import ResourceType
from tests.conftest import DemoServer, add_user, token_for


@pytest.fixture(scope="module")
def products_only(demo_server: DemoServer) -> str:
    """A token of a user granted products and nothing else (not web_sessions)."""
    services = demo_server.live.services
    group = services.groups.add(f"products-only-{time.monotonic_ns()}", "")
    services.grants.add(group.id, ResourceType.TABLE, "products", granted_by="test")
    return token_for(services, add_user(services, groups=(group.id,)))


@pytest.fixture(scope="module")
def analyst(demo_server: DemoServer) -> Principal:
    return demo_server.live.services.tokens.authenticate(demo_server.analyst_token)


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("SELECT * FROM web_sessions w JOIN orderz o USING (customer_id)", "table_not_found"),
        (
            "SELECT * FROM web_sessions w JOIN support_tickets t USING (customer_id)",
            "table_not_found",
        ),
        (
            "SELECT * FROM web_sessions w JOIN warehouse.main.nope n USING (session_id)",
            "path_not_registered",
        ),
        ("SELECT * FROM orders o JOIN web_sessions w USING (customer_id)", "mixed_engines"),
    ],
)
def test_a_join_with_a_remote_table_is_refused_for_what_is_wrong(
    demo_server: DemoServer, analyst: Principal, sql: str, code: str
) -> None:
    queries = demo_server.live.services.query
    with pytest.raises(QueryRefused) as refused:
        queries.run(analyst, sql, mode="auto")
    assert refused.value.code == code, refused.value.message
    with pytest.raises(QueryRefused) as estimated:
        queries.estimate(analyst, sql)
    assert estimated.value.code == code, estimated.value.message
    if "orderz" in sql:  # the typo is named, with the table meant
        assert refused.value.details["suggestions"] == ["orders"]


def test_no_snapshot_is_offered_of_a_remote_table_not_granted(
    demo_server: DemoServer, products_only: str
) -> None:
    with demo_server.live.client(products_only) as client:
        for sql in (
            "SELECT * FROM web_sessions w JOIN products p ON true",
            "SELECT * FROM products p JOIN web_sessions w ON true",
        ):
            answer = client.post("/api/query", json={"sql": sql})
            error = answer.json()["error"]
            assert (answer.status_code, error["code"]) == (404, "table_not_found"), error
            assert error["details"]["table"] == "web_sessions"
            # nothing of the table's columns or data range
            assert "event_date" not in answer.text and "snapshot_create" not in answer.text
