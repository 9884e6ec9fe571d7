"""schemathesis over the OpenAPI document, against the running app (real uvicorn, the
demo's data): no route answers 500, every route's auth holds, responses match their
schemas. A small example count per route in CI; ``AGNES_FUZZ_EXAMPLES`` raises it."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import DemoServer

EXAMPLES = int(os.environ.get("AGNES_FUZZ_EXAMPLES", "4"))
PUBLIC = ("/healthz", "/api/openapi.json", "/api/docs", "/.well-known")


def _operations(demo_server: DemoServer) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{demo_server.live.base_url}/api/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_route_answers_typed_and_guarded(
    demo_server: DemoServer, mode: GenerationMode
) -> None:
    """Each generated case is sent twice, by an analyst and by a caller with no token:
    generating the cases is most of this test's time (negative ones above all)."""
    callers = {"analyst": {"Authorization": f"Bearer {demo_server.analyst_token}"}, "nobody": {}}
    operations = _operations(demo_server)
    assert len(operations) > 20  # the whole API, not a few routes
    calls = dict.fromkeys(callers, 0)
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            for who, headers in callers.items():
                calls[who] += 1
                _check(case, case.call(headers=headers), who, mode)

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # a route with no input to get wrong
    for who in callers:  # the routes were called, not skipped
        assert calls[who] >= len(operations) // 2, (who, calls)


def _check(
    case: schemathesis.Case, response: schemathesis.Response, who: str, mode: GenerationMode
) -> None:
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if who == "nobody" and not case.path.startswith(PUBLIC):
        assert response.status_code >= 400, (  # refused, whatever the reason
            case.path,
            response.status_code,
        )
    if who == "analyst" and case.path.startswith("/api/admin"):
        assert response.status_code >= 400, (
            case.path,
            response.text[:200],
        )
    if (
        mode is GenerationMode.POSITIVE
        and response.status_code < 300
        and "json" in response.headers.get("content-type", "")
    ):
        case.validate_response(response)
