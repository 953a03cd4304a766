"""The bulk routes cost the same DynamoDB requests with 50 and 500 runs in the table: the dry
run, the start of a batch and its progress read the counters and the list indexes, never scan."""
from __future__ import annotations

import pytest

from chalicelib.adapters.counters import StreamPoller
from chalicelib.adapters.dynamo_models import bind_tables
from tests.contract.test_request_cost import counted_requests, seed
from tests.support.apps import bearer, post

AUTOMATIONS = """
automations:
  - name: alpha
    trigger: { type: manual }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
"""
FILTER = {"automationName": "alpha", "status": ["failed"]}


@pytest.fixture
def deps(wire):
    return wire(AUTOMATIONS)


def measure(client, deps, headers) -> dict[str, dict[str, int]]:
    dynamodb = bind_tables(deps.settings.runs_table, deps.settings.region).client
    costs = {}
    with counted_requests(dynamodb) as calls:
        assert post(client, "/api/automations/runs/replay", headers,
                    {**FILTER, "dryRun": True}).status_code == 200
    costs["dry run"] = dict(calls)
    with counted_requests(dynamodb) as calls:
        started = post(client, "/api/automations/runs/replay", headers, FILTER)
        assert started.status_code == 202
    costs["start"] = dict(calls)
    with counted_requests(dynamodb) as calls:
        assert client.http.get(f"/api/automations/batches/{started.json_body['batchId']}",
                               headers=headers).status_code == 200
    costs["progress"] = dict(calls)
    return costs


def test_bulk_routes_cost_the_same_requests_with_50_and_500_runs(client, deps, settings):
    headers = bearer(deps, "operator")
    client.http.get("/api/automations", headers=headers)  # the token's first use is recorded
    repo = deps.repo.inner.inner  # the DynamoDB repository behind redaction and offload
    poller = StreamPoller(settings)
    seed(repo, 0, 50)
    poller.drain()
    with_50 = measure(client, deps, headers)
    seed(repo, 50, 450)
    poller.drain()
    with_500 = measure(client, deps, headers)

    assert with_50 == with_500
    # Each call reads the caller's token twice (authorizer, route: GetItem); `until` is
    # capped at now, so the count is a Query of the index (a time-bounded count).
    assert with_500["dry run"] == {"GetItem": 2, "Query": 2, "BatchGetItem": 1}
    assert with_500["start"] == {"GetItem": 2, "Query": 1, "PutItem": 1}
    assert with_500["progress"] == {"GetItem": 2, "Query": 1}
