"""Every Lambda handler logs with its Lambda context (Powertools' inject_lambda_context, applied
as Chalice middleware) and the run it works on; SQS batches report only their failed records."""
from __future__ import annotations

import io
import json

import pytest

from app import app
from chalicelib.api.common import bearer as authorizer
from chalicelib.local.pollers import lambda_context, sqs_event
from chalicelib.observability import logger
from tests.support.apps import bearer
from tests.support.factories import definition, make_run

CONTEXT_KEYS = {"function_name", "function_request_id", "function_memory_size", "cold_start"}


@pytest.fixture
def logged(monkeypatch):
    """`logged(message)`: the JSON log lines with that message written during the test."""
    stream = io.StringIO()
    # The handler keeps the stdout of its creation (before pytest's capture fixtures).
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    return lambda message: [line for line in map(json.loads, stream.getvalue().splitlines())
                            if line.get("message") == message]


def _step_event(deps, *bodies: str) -> dict:
    messages = [{"MessageId": f"m-{index}", "ReceiptHandle": f"r-{index}", "Body": body}
                for index, body in enumerate(bodies)]
    return sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:steps", "us-east-1")


@pytest.fixture
def deps(aws_container):
    return aws_container


def test_step_worker_logs_carry_the_lambda_context_and_the_run(deps, logged):
    run = make_run(definition=definition("welcome-email", {
        "name": "note", "type": "data", "operator": "set", "props": {"value": 1}}))
    deps.repo.create_run(run)
    context = lambda_context("automation-runs-dev-execute_steps", 900)()
    result = app.handler_map["execute_steps"](
        _step_event(deps, json.dumps({"runId": run.id, "stepIndex": 0})), context)
    assert result == {"batchItemFailures": []}
    (line,) = logged("step message done")
    assert CONTEXT_KEYS <= set(line)
    assert line["function_name"] == "automation-runs-dev-execute_steps"
    assert line["function_request_id"] == context.aws_request_id
    assert line["run_id"] == run.id


def test_a_bad_record_fails_alone_and_the_rest_of_the_batch_is_processed(deps):
    run = make_run()
    deps.repo.create_run(run)
    event = _step_event(deps, "not json", json.dumps({"runId": run.id, "stepIndex": 0}))
    result = app.handler_map["consume_step_dlq"](event, lambda_context("dlq", 30)())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert deps.repo.get_run(run.id).status.value == "failed"


def test_dead_letter_logs_carry_the_lambda_context_and_the_run(deps, logged):
    run = make_run()
    deps.repo.create_run(run)
    app.handler_map["consume_step_dlq"](
        _step_event(deps, json.dumps({"runId": run.id, "stepIndex": 0})),
        lambda_context("automation-runs-dev-consume_step_dlq", 30)())
    (line,) = logged("run failed by dead letter")
    assert CONTEXT_KEYS <= set(line) and line["run_id"] == run.id


def test_an_api_error_is_logged_with_the_lambda_context_and_the_run_of_the_route(
        deps, logged, monkeypatch):
    from chalice.test import Client  # noqa: PLC0415

    def broken(run_id):
        raise RuntimeError("store unreachable")

    monkeypatch.setattr(deps.repo, "get_detail", broken)
    with Client(app) as client:
        response = client.http.get("/api/automations/runs/run-123",
                                   headers=bearer(deps, "viewer"))
    assert response.status_code == 500
    (line,) = logged("unhandled error in API route")
    assert {"function_name", "function_request_id", "cold_start"} <= set(line)
    assert line["run_id"] == "run-123"


@pytest.mark.parametrize("handler", ["count_runs", "tick", "authorizer"])
def test_the_other_handlers_run_with_the_lambda_context_too(deps, handler):
    context = lambda_context(f"automation-runs-dev-{handler}", 30)()
    if handler == "authorizer":
        authorizer({"type": "TOKEN", "authorizationToken": "Bearer nobody-has-this",
                    "methodArn": "arn:aws:execute-api:us-east-1:1:api/v1/GET/x"}, context)
    elif handler == "tick":
        app.handler_map["tick"]({"version": "0", "id": "1", "detail-type": "Scheduled Event",
                                 "source": "aws.events", "account": "1", "region": "us-east-1",
                                 "time": "2030-01-01T00:00:00Z", "resources": [],
                                 "detail": {}}, context)
    else:
        app.handler_map["count_runs"]({"Records": []}, context)
    keys = logger.get_current_keys()
    assert keys["function_name"] == f"automation-runs-dev-{handler}"
    assert keys["function_request_id"] == context.aws_request_id


def test_handlers_are_traced_without_recording_responses_or_errors(deps, monkeypatch):
    from chalicelib import observability  # noqa: PLC0415

    traced = []

    def capture(handler, **options):
        traced.append(options)
        return handler

    monkeypatch.setattr(observability.tracer, "capture_lambda_handler", capture)
    monkeypatch.setattr(observability.tracer, "disabled", False)
    app.handler_map["count_runs"]({"Records": []}, lambda_context("count", 30)())
    # Responses and errors may hold secrets: X-Ray gets neither.
    assert traced == [{"capture_response": False, "capture_error": False}]


def test_handlers_build_no_trace_segment_when_tracing_is_disabled(deps, monkeypatch):
    """Outside Lambda (the local stack) or with POWERTOOLS_TRACE_DISABLED, no X-Ray (dummy)
    subsegment is made per invocation: it cost the local stack a tenth of a request's CPU."""
    from aws_xray_sdk.core import xray_recorder  # noqa: PLC0415

    from chalicelib import observability  # noqa: PLC0415

    begun = []
    original = xray_recorder.begin_subsegment
    monkeypatch.setattr(xray_recorder, "begin_subsegment",
                        lambda *args, **kwargs: begun.append(args) or original(*args, **kwargs))
    assert observability.tracer.disabled
    app.handler_map["count_runs"]({"Records": []}, lambda_context("count", 30)())
    keys = logger.get_current_keys()

    assert begun == []
    assert keys["function_name"] == "count"  # the Lambda context still reaches the logs
