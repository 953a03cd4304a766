"""What a run costs in DynamoDB requests and capacity units, pinned: a change that makes runs
dearer fails here (and a cheaper one must update the pins). Counted by bench/meter.py on the
real handlers on moto; figures and prices are printed by `make bench`."""
from __future__ import annotations

import json

import pytest

from bench.meter import AwsMeter
from chalicelib.adapters.counters import StreamPoller, process_stream_event
from chalicelib.domain.statuses import TERMINAL
from chalicelib.local.pollers import failed_message_ids, lambda_context, sqs_event
from tests.support.apps import bearer, post
from tests.support.sqs import step_handler

STEPS = 10
AUTOMATIONS = "automations:\n  - name: ten\n    trigger: { type: manual }\n    actions:\n" + "".join(
    f"      - {{ name: s{i}, type: data, operator: set, props: {{ value: {{ n: {i} }} }} }}\n"
    for i in range(STEPS))

# One 10-step run outside the counter function: create (with its admission message), begin,
# per step a claim (UpdateItem), the run re-read for a cancel (GetItem) and the result
# (PutItem), then the final transition. Nothing follows a completed run without a concurrency
# limit, so it writes no follow-up marker (`make bench` prints every write and its units).
RUN_REQUESTS = {"GetItem": STEPS, "PutItem": 1 + STEPS, "Query": 1,
                "UpdateItem": 1 + STEPS + 1}
RUN_WRITE_UNITS = 28  # 23 item writes + 5 list-index writes
RUN_READ_UNITS = STEPS + 1.0  # the re-reads and the detail Query of the first message
# One counter batch: a transaction of the checkpoint and the four counters, however many
# runs of one automation and trigger type the batch holds.
BATCH_WRITE_UNITS = 10


@pytest.fixture
def deps(wire):
    return wire(AUTOMATIONS)


@pytest.fixture
def meter(deps):
    meter = AwsMeter()
    clients = [deps.repo.client, deps.step_queue.client]
    for client in clients:
        meter.attach(client)
    yield meter
    for client in clients:
        meter.detach(client)


def execute(deps, meter, client, headers) -> str:
    """Trigger a run and deliver its step messages; only the handlers' requests count."""
    response = post(client, "/api/automations/ten/trigger", headers, {"triggerData": {}})
    assert response.status_code == 202, response.body
    run_id = response.json_body["id"]
    handler, queue = step_handler(), deps.step_queue
    for _ in range(20):
        with meter.paused():
            messages = queue.receive(max_messages=1, wait_seconds=0)
            if not messages and deps.repo.get_run(run_id).status in TERMINAL:
                return run_id
        assert messages, "the run is not over and no step message is queued"
        result = handler(sqs_event(messages, queue.arn, deps.settings.region),
                         lambda_context("execute_steps", 900)())
        assert not failed_message_ids(result)
        with meter.paused():
            queue.delete(messages[0]["ReceiptHandle"])
    raise AssertionError("the run did not end")


class TestWriteCost:
    def test_a_ten_step_run_costs_its_pinned_requests_and_units(self, client, deps, meter):
        headers = bearer(deps, "operator")
        execute(deps, meter, client, headers)  # the definition is stored once per version
        before = meter.snapshot()
        run_id = execute(deps, meter, client, headers)
        used = meter.snapshot().minus(before)

        assert deps.repo.get_run(run_id).status.value == "completed"
        dynamo = used.by_operation("dynamodb")
        dynamo.pop("GetItem")  # the API token lookups are counted apart below
        assert dynamo == {k: v for k, v in RUN_REQUESTS.items() if k != "GetItem"}
        # The trigger reads its token twice: in the authorizer (whose answer API Gateway
        # caches) and in the route, so that a revoked token is refused on its next request.
        assert used.by_operation("dynamodb")["GetItem"] == RUN_REQUESTS["GetItem"] + 2
        # One hand-over message; the two step messages each hold their attempt's lease
        # once (issue 11: the long visibility timeout is only a live attempt's lease).
        assert used.by_operation("sqs") == {"SendMessage": 1, "ChangeMessageVisibility": 2}
        assert used.write_units == RUN_WRITE_UNITS
        assert used.read_units == RUN_READ_UNITS + 2  # + the two token reads

    def test_a_counter_batch_costs_the_same_for_one_run_or_many(self, client, deps, meter,
                                                                settings):
        headers = bearer(deps, "operator")
        poller = StreamPoller(settings)
        with meter.paused():
            poller.fetch()
        runs = [execute(deps, meter, client, headers) for _ in range(3)]
        with meter.paused():
            records = [r for batch in poller.fetch().values() for r in batch]
        run_records = [r for r in records if r["dynamodb"]["Keys"]["sk"]["S"] == "RUN"]
        assert len(run_records) == 3 * len(runs)  # created, running, completed

        costs = []
        for batch in (run_records[:3], run_records[3:]):
            before = meter.snapshot()
            process_stream_event({"Records": json.loads(json.dumps(batch, default=str))})
            costs.append(meter.snapshot().minus(before))
        assert [c.write_units for c in costs] == [BATCH_WRITE_UNITS, BATCH_WRITE_UNITS]
        assert [c.by_operation("dynamodb") for c in costs] == [
            {"GetItem": 1, "TransactWriteItems": 1}] * 2
