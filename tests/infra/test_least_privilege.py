"""Least privilege, checked against what the code does: every function of the packaged
template is driven on moto through its real handler, each AWS call it makes is turned into the
IAM requests AWS would authorize, and each request is evaluated against that function's role.

A role must allow every request its function makes, and grant nothing else but the few actions
listed in PLATFORM (made by Lambda on the function's behalf, or not reached on moto)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.counters import StreamPoller
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.api.common import bearer as authorizer
from chalicelib.domain.clock import utcnow
from chalicelib.local.pollers import lambda_context, scheduled_event, sqs_event
from chalicelib.services.tokens import create_token
from tests.support.apps import bearer, install, post
from tests.support.iam_calls import CallRecorder, Request, iam_requests, queue_arn, table_arn
from tests.support.iam_policy import StackResolver, decision, granted_actions

from .helpers import of_type

EVENT_SOURCE = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
STREAM_SOURCE = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                 "dynamodb:ListStreams"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# Without ListBucket a missing (expired) payload is a 403, not a 404.
MISSING_PAYLOADS = {"s3:ListBucket"}
# Read through the SecretSource (SECRETS_BACKEND=ssm, the default).
SECRETS = {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "kms:Decrypt"}
# Granted without a call on moto: Lambda polls event sources and writes logs with the
# function's role.
PLATFORM = {
    "APIHandler": LOGS | SECRETS,
    "Bearer": LOGS,
    "TokenAdmin": LOGS,
    "ExecuteSteps": LOGS | EVENT_SOURCE | SECRETS | MISSING_PAYLOADS,
    "ConsumeStepDlq": LOGS | EVENT_SOURCE | MISSING_PAYLOADS,
    "Tick": LOGS | MISSING_PAYLOADS,
    "CountRuns": LOGS | STREAM_SOURCE,
}
WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:BatchWriteItem")

AUTOMATIONS = """
automations:
  - name: big
    trigger: { type: manual }
    actions:
      - { name: copy, type: data, operator: set, props: { value: "{{trigger.data}}" } }
      - { name: call, type: http, operator: post, props: { url: "{{secrets.SINK}}/big", body: { size: "{{steps.copy.pad}}" } } }
  - name: boom
    trigger: { type: manual }
    actions:
      - { name: fail, type: flow, operator: fail, props: { message: "on purpose" } }
  - name: flaky
    trigger: { type: manual }
    retry: { maxAttempts: 2, delayMs: 100 }
    actions:
      - { name: call, type: http, operator: post, props: { url: "{{secrets.SINK}}/down" } }
  - name: one-at-a-time
    trigger: { type: manual }
    concurrency: { limit: 1 }
    actions:
      - { name: note, type: data, operator: set, props: { value: 1 } }
  - name: waits
    trigger: { type: manual }
    timeout: 60000
    actions:
      - { name: nap, type: delay, operator: wait, props: { ms: 60000 } }
  - name: hook
    trigger: { type: webhook, deduplicationKey: "{{trigger.data.body.id}}" }
    actions:
      - { name: refuse, type: flow, operator: fail, props: { message: "not today" } }
  - name: minutely
    trigger: { type: cron, expression: "* * * * *" }
    actions:
      - { name: note, type: data, operator: set, props: { value: 1 } }
  - name: on-failure
    trigger: { type: automation-failure, statuses: [failed, exhausted, timed-out] }
    actions:
      - { name: note, type: data, operator: set, props: { value: "{{trigger.data.run.id}}" } }
"""


def _physical(session, settings, template) -> dict[str, dict[str, str]]:
    """Logical id → the moto resource's Ref and attributes."""
    table = session.client("dynamodb").describe_table(TableName=settings.runs_table)["Table"]
    found = {"RunsTable": {"Ref": table["TableName"], "Arn": table["TableArn"],
                           "StreamArn": table["LatestStreamArn"]},
             "PayloadBucket": {"Ref": settings.payload_bucket,
                               "Arn": f"arn:aws:s3:::{settings.payload_bucket}"}}
    for logical_id, name in (("StepQueue", settings.step_queue),
                             ("StepDeadLetterQueue", settings.step_dlq),
                             ("ExhaustedRunsQueue", settings.exhausted_queue)):
        found[logical_id] = {"Ref": name, "Arn": queue_arn(name), "QueueName": name}
    resolver = StackResolver(template, found)
    for logical_id, props in of_type(template["Resources"], "AWS::Logs::LogGroup").items():
        name = resolver.value(props["LogGroupName"])
        found[logical_id] = {"Ref": name, "Arn": f"arn:aws:logs:us-east-1:123456789012:"
                                                 f"log-group:{name}:*"}
    return found


def _hash_keys(template) -> dict[str | None, str]:
    table = template["Resources"]["RunsTable"]["Properties"]
    keys: dict[str | None, str] = {None: "pk"}
    for index in table["GlobalSecondaryIndexes"]:
        keys[index["IndexName"]] = index["KeySchema"][0]["AttributeName"]
    return keys


def _roles(template) -> dict[str, str]:
    return {function: props["Role"]["Fn::GetAtt"][0] for function, props
            in of_type(template["Resources"], "AWS::Serverless::Function").items()}


def _cold_start(deps) -> None:
    """Forget the clients and looked-up queue URLs, as each function starts cold."""
    deps._built.clear()


def _deliver(recorder, queue, function: str, handler, timeout_s: int) -> int:
    """Hand every visible message of `queue` to `handler` (as Lambda would) until none is left."""
    delivered = 0
    while messages := queue.receive(max_messages=10, wait_seconds=0):
        for message in messages:
            event = sqs_event([message], queue.arn, "us-east-1")
            with recorder.as_function(function):
                result = handler(event, lambda_context(function, timeout_s)())
            if not result["batchItemFailures"]:
                queue.delete(message["ReceiptHandle"])
            delivered += 1
    return delivered


def _execute(recorder, deps) -> None:
    _cold_start(deps)
    while _deliver(recorder, deps.step_queue, "ExecuteSteps", app.handler_map["execute_steps"],
                   900):
        pass


def _trigger(client, headers, name: str, data: dict | None = None) -> str:
    response = post(client, f"/api/automations/{name}/trigger", headers, {"triggerData": data or {}})
    assert response.status_code == 202, response.body
    return response.json_body["id"]


def _drive_api(recorder, client, deps, aws) -> dict[str, str]:
    """Every route family as operators use it; returns run ids by automation."""
    admin, viewer = bearer(deps, "admin"), bearer(deps, "viewer")
    pad = {"pad": "x" * 20_000}  # over the item budget: offloaded to S3
    ids: dict[str, str] = {}
    _cold_start(deps)
    with recorder.as_function("APIHandler"):
        for name, data in (("big", pad), ("boom", {}), ("flaky", {}), ("waits", pad)):
            ids[name] = _trigger(client, admin, name, data)
        # The first takes the slot, the second waits for it, the third is cancelled waiting.
        ids["serial"], _, waiting = (_trigger(client, admin, "one-at-a-time") for _ in range(3))
        assert post(client, f"/api/automations/runs/{waiting}/cancel", admin).status_code == 200
        for path in ("/api/automations", "/api/automations/runs?status=pending",
                     "/api/automations/runs?automationName=big&pageSize=5",
                     f"/api/automations/runs/{ids['big']}"):
            assert client.http.get(path, headers=viewer).status_code == 200, path
        hook = post(client, "/api/automations/hook/webhook", {}, {"id": "evt-1"})
        assert hook.status_code == 202, hook.body
    _execute(recorder, deps)
    # A payload the bucket's lifecycle removed: the detail names it (404 from S3, not 403).
    s3 = aws.client("s3")
    (blob,) = s3.list_objects_v2(Bucket=deps.settings.payload_bucket,
                                 Prefix=f"runs/{ids['big']}/trigger")["Contents"]
    s3.delete_object(Bucket=deps.settings.payload_bucket, Key=blob["Key"])
    _cold_start(deps)
    with recorder.as_function("APIHandler"):
        assert client.http.get(f"/api/automations/runs/{ids['big']}",
                               headers=viewer).status_code == 200
        replay = post(client, f"/api/automations/runs/{ids['boom']}/replay", admin)
        assert replay.status_code == 202, replay.body
        # The same delivery again after its run failed: let through as a new run.
        again = post(client, "/api/automations/hook/webhook", {}, {"id": "evt-1"})
        assert again.status_code == 202, again.body
    _execute(recorder, deps)
    return ids


def _drive_dead_letters(recorder, client, deps, ids) -> None:
    """A step message that crashed the executor repeatedly: for a run holding a concurrency
    slot (another waits for it), and for a finished run with offloaded payloads."""
    admin = bearer(deps, "admin")
    holding, _waiting = (_trigger(client, admin, "one-at-a-time") for _ in range(2))
    while messages := deps.step_queue.receive(max_messages=10, wait_seconds=0):
        for message in messages:  # lost with the crashed executor
            deps.step_queue.delete(message["ReceiptHandle"])
    dead_letters = SqsQueue(deps.settings.step_dlq, deps.settings)
    for run_id in (holding, ids["big"]):
        dead_letters.send({"runId": run_id, "stepIndex": 0})
    _cold_start(deps)
    _deliver(recorder, dead_letters, "ConsumeStepDlq", app.handler_map["consume_step_dlq"], 30)


def _drive(recorder, client, deps, aws) -> None:
    """Drive every function's code paths; calls are attributed to the function running."""
    ids = _drive_api(recorder, client, deps, aws)
    _drive_dead_letters(recorder, client, deps, ids)
    tick = app.handler_map["tick"]
    now = utcnow()
    for later in (timedelta(0), timedelta(days=400)):  # cron and sweep; then purge everything
        deps.overrides["clock"] = lambda later=later: now + later
        _cold_start(deps)
        with recorder.as_function("Tick"):
            tick(scheduled_event(now + later, "us-east-1", "tick"), lambda_context("Tick", 120)())
    records = [r for batch in StreamPoller(deps.settings).fetch().values() for r in batch]
    _cold_start(deps)
    with recorder.as_function("CountRuns"):
        app.handler_map["count_runs"]({"Records": records}, lambda_context("CountRuns", 30)())
    with recorder.as_function("TokenAdmin"):  # what the /api/tokens routes do
        create_token(deps.tokens, "viewer", deps.clock(), description="issued by an admin")


def _problems(recorder, resolver, hash_keys, function: str, role: str) -> list[str]:
    """What the role refuses that the function did, and what it grants beyond that."""
    statements = resolver.role_statements(role)
    requests = [r for call in recorder.of(function) for r in iam_requests(call, hash_keys)]
    problems = [f"{function}: {decision(statements, r)} {r.action} on {r.resource} {r.context}"
                for r in requests if decision(statements, r) != "Allow"]
    unused = granted_actions(statements) - {r.action for r in requests} - PLATFORM[function]
    missing = PLATFORM[function] - granted_actions(statements)
    problems += [f"{function}: grants {sorted(unused)} but never calls them"] if unused else []
    problems += [f"{function}: lacks {sorted(missing)}"] if missing else []
    return problems


def test_every_role_allows_what_its_function_calls_and_nothing_more(
        sam, aws, settings, http_sink, tmp_path, monkeypatch):
    http_sink.respond("/down", 500)
    monkeypatch.setenv("RUNS_SECRET_SINK", http_sink.url)
    deps = install(settings, tmp_path, AUTOMATIONS)
    # Calls inside the authorizer are the Bearer function's, whichever route triggered them.
    recorder = CallRecorder(reassign={authorizer.func.__code__: "Bearer"})
    with recorder, Client(app) as client:
        _drive(recorder, client, deps, aws)
    resolver = StackResolver(sam, _physical(aws, settings, sam))
    roles = _roles(sam)
    assert set(roles) == set(PLATFORM)
    assert {call.function for call in recorder.calls} == set(PLATFORM)
    problems = [problem for function, role in roles.items()
                for problem in _problems(recorder, resolver, _hash_keys(sam), function, role)]
    assert problems == [], "\n".join(problems)
    writes = [(call.function, r.action) for call in recorder.calls
              for r in iam_requests(call, _hash_keys(sam))
              if r.action in WRITES and any(k.startswith("TOKEN#")
                                            for k in r.context.get("dynamodb:LeadingKeys", []))]
    assert writes and {function for function, _ in writes} == {"TokenAdmin"}


@pytest.mark.parametrize("action", WRITES)
def test_no_role_but_the_token_admins_may_issue_or_change_a_token(sam, aws, settings, action):
    resolver = StackResolver(sam, _physical(aws, settings, sam))
    write = Request(action, table_arn(settings.runs_table),
                    {"dynamodb:LeadingKeys": ["TOKEN#0123abcd"],
                     "dynamodb:Attributes": ["pk", "sk", "role", "tokenId"]})
    allowed = {function for function, role in _roles(sam).items()
               if decision(resolver.role_statements(role), write) == "Allow"}
    assert allowed == ({"TokenAdmin"} if action == "dynamodb:PutItem" else set())
