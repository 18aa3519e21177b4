"""schemathesis against the oracle's own OpenAPI document: the real app (a real service on
the session anvil with the protocol deployed, a SQLite store), every operation fed
schema-valid and schema-violating input. A bad request must be a 4xx with a reason, never
a 5xx: a 5xx tells a node "retry", so a malformed unit would be resent forever."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from support.chain import fresh_protocol
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess
from oracle.api import create_app
from oracle.config import OracleSettings

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 100
"""Per operation and mode: well under a minute for the whole API on 2 shared cores."""


@pytest.fixture(scope="module")
def oracle_schema(
    anvil: AnvilProcess, w3: Web3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    workdir = tmp_path_factory.mktemp("schemathesis-oracle")
    fresh_protocol(w3, workdir / "deployments")
    settings_ = OracleSettings(
        rpc_url=anvil.url,
        deployments_dir=workdir / "deployments",
        data_dir=workdir / "oracle",
        signer_key="0x" + "11" * 32,
        watcher_enabled=False,
    )
    app = create_app(settings_)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.service.close()


OPERATIONS = [
    ("POST", "/v1/readings"),
    ("GET", "/v1/devices/{device_id}/readings"),
    ("GET", "/v1/units/{digest}"),
    ("GET", "/v1/reports/{request_id}"),
    ("GET", "/v1/reports/{request_id}/devices/{device_id}"),
    ("GET", "/v1/reports/{request_id}/signatures"),
    ("GET", "/v1/reports/{request_id}/conflicts"),
    ("GET", "/v1/devices/{device_id}/conflicts"),
    ("GET", "/health"),
    ("GET", "/metrics"),
]
WITHOUT_INPUT = {"/health", "/metrics"}
"""No parameter or body to get wrong: no negative case exists."""
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or path not in WITHOUT_INPUT
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_oracle_api_answers_no_5xx_to_any_input(
    oracle_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    """Valid-shaped and invalid input per operation (schemathesis' pytest loader does
    not support this pytest, so the operation's strategy is driven by hypothesis here)."""
    operation = oracle_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def answers_without_5xx(case: schemathesis.Case) -> None:
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, f"{case.as_curl_command()} -> {response.text}"
        if 400 <= response.status_code < 500:
            assert response.json().get("detail"), "a refusal must say why"

    answers_without_5xx()


def test_the_document_covers_every_route(oracle_schema: schemathesis.BaseSchema) -> None:
    """schemathesis tests what the document declares: an undeclared route goes untested."""
    assert {
        (method.upper(), path)
        for path, item in oracle_schema.raw_schema["paths"].items()
        for method in item
    } == set(OPERATIONS)
