"""schemathesis over the served OpenAPI document: every operation, generated requests (bounded), against the
real server on loopback. Requirements: no 5xx, every response conforms to its documented status, content type
and schema. Role routes are called as admin, the ingest route with the probe's scoped token."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.fakes.marathon import FakeMarathon
from orchestrator.services.api.server import state_from_config
from tests.api.conftest import ACCOUNTS, RunningApi, start_api
from tests.api.test_ingest_and_views import post, topology

MAX_EXAMPLES = 12   # per operation: ~20 operations, a few hundred requests in all


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory, hashes: dict[str, str]) -> Iterator[RunningApi]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    (tmp / "keys").write_text(f"k1 {secrets.token_urlsafe(40)}\n")
    with FakeMarathon(instances=1, step_seconds=0.2, health_delay=0.2) as fake:
        fake.add_app({"id": "/shop/web", "instances": 1})
        (tmp / "api.yaml").write_text(yaml.safe_dump({
            "signing_key_file": "keys", "marathon": {"urls": fake.urls},
            "accounts": [{"name": n, "role": r.value, "password_hash": hashes[n]} for n, r in ACCOUNTS.items()]}))
        api = start_api(state_from_config(str(tmp / "api.yaml")))
        post(api, topology(1, peer=2))
        post(api, topology(2, peer=1))
        try:
            yield api
        finally:
            api.stop()


def _runner(operation: Any, url: str, headers: dict[str, str], checks: list[Any]) -> Any:
    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=checks)

    return run


def test_openapi_conformance(fuzz_api: RunningApi) -> None:
    openapi = schemathesis.openapi.from_url(fuzz_api.url + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures: dict[str, str] = {}
    operations = 0
    for result in openapi.get_all_operations():
        operations += 1
        if not isinstance(result, Ok):   # an operation schemathesis cannot read is a failure of the document
            failures[f"operation {operations}"] = str(result.err())
            continue
        operation = result.ok()
        caller = "probe" if operation.path.endswith("/reports") else "admin"
        headers = {"Authorization": f"Bearer {fuzz_api.token(caller)}"}

        run = _runner(operation, fuzz_api.url, headers, checks)
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected: every operation is tried, all failures reported
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:2000]
    assert operations >= 20
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
