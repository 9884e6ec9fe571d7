"""schemathesis over the OpenAPI document, against the running app (real uvicorn, the
demo's data): no route answers 500, every route's auth holds, responses match their
schemas. A small example count per route in CI; ``AGNES_FUZZ_EXAMPLES`` raises it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import DemoServer, LiveServer, running_server

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

    def check(case: schemathesis.Case) -> None:
        for who, headers in callers.items():
            calls[who] += 1
            _check(case, case.call(headers=headers), who, mode)

    for operation in operations:
        _each_case(operation, mode, check)
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


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own: an admin's generated calls change and delete what they find."""
    with running_server(tmp_path_factory.mktemp("fuzz-admin") / "data") as server:
        yield server


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_admin_input_answers_500(admin_server: LiveServer, mode: GenerationMode) -> None:
    """The analyst's run above never reaches the admin routes' bodies (403 first): an
    explicit null in a registry change answered 500 there. Every route, as an admin."""
    schema = schemathesis.openapi.from_url(f"{admin_server.base_url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {admin_server.admin_token}"}
    admin_routes = 0

    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, response.text[:300])

    for operation in (result.ok() for result in schema.get_all_operations()):
        admin_routes += operation.path.startswith("/api/admin")
        _each_case(operation, mode, check)
    assert admin_routes > 10


def _each_case(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    check: Callable[[schemathesis.Case], None],
) -> None:
    """``check`` on EXAMPLES cases generated for ``operation``."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        check(case)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # a route with no input to get wrong
