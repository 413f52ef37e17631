"""Schemathesis calls every operation of the OpenAPI description with inputs
generated from it, valid and invalid, as an admin, a controller and a host:
no answer is a 5xx.

The examples are derandomized (the same inputs every run) and few per
operation, and each has a deadline, so that the run takes a bounded time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis.errors import Unsatisfiable
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine

from wuacache_server.api.app import create_app
from wuacache_server.config import Settings
from wuacache_server.db.models import TokenRole

EXAMPLES_PER_OPERATION = 5
EXAMPLE_DEADLINE = timedelta(seconds=10)
NOT_FUZZED = {
    # Downloads the catalog from Microsoft: tested against a lab upstream in test_cabsync.
    ("POST", "/api/v1/catalog/sync"),
    # Would revoke the caller's own token, and leave the rest of the run to 401s.
    ("DELETE", "/api/v1/tokens/{token_id}"),
    # Answers 503 without the downloads, which fetch from Microsoft: tested in test_api_downloads.
    ("POST", "/api/v1/downloads"),
}


@pytest.fixture(params=[TokenRole.ADMIN, TokenRole.CONTROLLER, TokenRole.HOST], ids=str)
def caller(request: pytest.FixtureRequest, issue_token: Callable[..., str]) -> dict[str, str]:
    """The headers of a token of each role."""
    role = request.param
    token = issue_token(role, "win10-01" if role is TokenRole.HOST else None)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_input_gets_a_server_error(
    settings: Settings, engine: Engine, caller: dict[str, str], mode: schemathesis.GenerationMode
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        if (operation.method.upper(), operation.path) in NOT_FUZZED:
            continue

        @given(case=operation.as_strategy(mode))
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=EXAMPLE_DEADLINE,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers=caller)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"

        try:
            call()
        except Unsatisfiable:
            assert mode is schemathesis.GenerationMode.NEGATIVE  # an operation without any input to get wrong
