"""schemathesis over every operation of the OpenAPI document the app serves, in-process (the
Chalice app as a WSGI callable, tests/support/wsgi.py; moto behind it): valid and invalid
inputs, bounded and derandomised, checked with `not_a_server_error` and
`response_schema_conformance`, with a valid admin token on every request.

Random path parameters would only ever meet 404s and 401s, so a third of them name what
exists: the automations below, a completed run (replayable), a pending run (cancellable),
and a spare admin token that `DELETE /api/tokens/{id}` may revoke. The caller's own token is
never offered: it is minted per operation, its id is 12 random hex digits no generated id
reaches, and every case checks it still answers (a revoked caller would turn the rest of the
run into 401s and hide what it should find)."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
import schemathesis
from chalice.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app import app
from chalicelib.domain.statuses import TERMINAL
from chalicelib.services.ports import TokenRecord
from chalicelib.services.tokens import hash_secret
from chalicelib.services.trigger import start_run
from tests.support.apps import bearer
from tests.support.sqs import run_until
from tests.support.wsgi import ChaliceWsgi

# Generated cases per operation, besides schemathesis's explicit and boundary (coverage)
# cases: about 1,000 requests in all, ~36 s of CPU (longer when the 2 cores are shared). FUZZ_EXAMPLES=500 for a deep run.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
AUTOMATIONS = """
automations:
  - name: by-hand
    trigger: { type: manual }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data}}" } }
  - name: hook
    trigger: { type: webhook }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data.body}}" } }
"""
DONE_RUN = "00000000-0000-4000-8000-00000000d0e1"
PENDING_RUN = "00000000-0000-4000-8000-0000000a1e2d"
SPARE_TOKEN = "5a5a5a5a5a5a"
KNOWN = {"name": ["by-hand", "hook"], "id": [DONE_RUN, PENDING_RUN, SPARE_TOKEN]}

WSGI = ChaliceWsgi(app)
# The document the app serves. Loaded as a dict rather than with `from_wsgi`, which leaves
# out the operation that served it (GET /api/openapi.json is an operation like the others).
with Client(app) as _client:
    DOCUMENT = _client.http.get("/api/openapi.json").json_body
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.app = WSGI
CHECKS = [not_a_server_error, response_schema_conformance]


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Keep the generated value, or (one time in three) name something that exists."""
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    choices = {}
    for name, value in path_parameters.items():
        known = KNOWN.get(name, [])
        choices[name] = st.one_of(st.just(value), st.just(value), st.sampled_from(known)) \
            if known else st.just(value)
    return st.fixed_dictionaries(choices)


@pytest.fixture
def caller(wire):
    """The admin token every case carries (its own per operation), its id, and the state the
    known path parameters name."""
    deps = wire(AUTOMATIONS)
    headers = bearer(deps, "admin")
    token_id = deps.tokens.list()[0].token_id
    deps.tokens.put(hash_secret("spare-admin-token-secret"), TokenRecord(
        token_id=SPARE_TOKEN, role="admin", created_at=datetime.now(timezone.utc),
        description="spare"))
    automation = deps.catalog.get("by-hand")
    start_run(deps, automation, "manual", {"n": 1}, actor="test", run_id=DONE_RUN)
    run_until(deps, lambda: deps.repo.get_run(DONE_RUN).status in TERMINAL)
    start_run(deps, automation, "manual", {"n": 2}, actor="test", run_id=PENDING_RUN)
    return {"Authorization": headers["Authorization"]}, token_id, deps


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_without_5xx_and_as_documented(case, caller):
    headers, token_id, deps = caller
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
    # Cases that drop or garble the Authorization header (schemathesis's negative auth
    # scenarios) rightly get a 401; with the caller's own token, a 401 means it was revoked.
    sent = response.request.headers.get("Authorization")
    if case.operation.definition.raw.get("security") and sent == headers["Authorization"]:
        assert response.status_code != 401, f"the caller's token was refused: {response.text}"
    assert any(t.token_id == token_id for t in deps.tokens.list())


def test_every_operation_of_the_document_is_exercised():
    documented = {(method.upper(), path) for path, ops in DOCUMENT["paths"].items()
                  for method in ops}
    generated = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert generated == documented and len(documented) >= 19
