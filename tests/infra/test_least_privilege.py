"""Least privilege, checked against what the code does: every function of the packaged
template is driven on moto through its real handler (tests/support/function_driver.py), each
AWS call it makes is turned into the IAM requests AWS would authorize, and each request is
evaluated against that function's role.

A role must allow every request its function makes, and grant nothing else but the few actions
listed in PLATFORM (made by Lambda on the function's behalf, or not reached on moto)."""
from __future__ import annotations

import pytest
from chalice.test import Client

from app import app
from chalicelib.api.common import bearer as authorizer
from tests.support.apps import install
from tests.support.function_driver import AUTOMATIONS, FunctionDriver
from tests.support.iam_calls import CallRecorder, Request, iam_requests, queue_arn, table_arn
from tests.support.iam_policy import StackResolver, decision, granted_actions

from .helpers import of_type

EVENT_SOURCE = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
STREAM_SOURCE = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                 "dynamodb:ListStreams"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# Without ListBucket a missing (expired) payload is a 403, not a 404.
MISSING_PAYLOADS = {"s3:ListBucket"}
# SecureStrings are decrypted by SSM with the role's KMS permission; the by-path read is
# recorded once the code reads secrets from SSM (SECRETS_BACKEND=ssm, the default).
SECRETS = {"kms:Decrypt", "ssm:GetParametersByPath"}
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
STACK = "test-stack"

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
    resolver = StackResolver(template, found, stack=STACK)
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
    monkeypatch.setenv("RUNS_SECRET_SINK", http_sink.url)  # the local (env) secret source
    aws.client("ssm").put_parameter(Name=f"/{STACK}/secrets/SINK", Value=http_sink.url,
                                    Type="SecureString")  # the deployed one
    deps = install(settings, tmp_path, AUTOMATIONS)
    resolver = StackResolver(sam, _physical(aws, settings, sam), stack=STACK)
    # Calls inside the authorizer are the Bearer function's, whichever route triggered them.
    recorder = CallRecorder(reassign={authorizer.func.__code__: "Bearer"})
    with recorder, Client(app) as client:
        FunctionDriver(recorder, client, deps, aws, resolver).everything()
    roles = _roles(sam)
    assert set(roles) == set(PLATFORM)
    assert {call.function for call in recorder.calls} == set(PLATFORM)
    hash_keys = _hash_keys(sam)
    problems = [problem for function, role in roles.items()
                for problem in _problems(recorder, resolver, hash_keys, function, role)]
    assert problems == [], "\n".join(problems)
    writes = [(call.function, r.action) for call in recorder.calls
              for r in iam_requests(call, hash_keys)
              if r.action in WRITES and any(k.startswith("TOKEN#")
                                            for k in r.context.get("dynamodb:LeadingKeys", []))]
    assert writes and {function for function, _ in writes} == {"TokenAdmin", "Bearer"}
    # The authorizer writes only when a token was last used; everything else is TokenAdmin's.
    touches = [r.context["dynamodb:Attributes"] for call in recorder.of("Bearer")
               for r in iam_requests(call, hash_keys) if r.action in WRITES]
    assert touches and all(a == ["lastUsedAt", "pk", "sk"] for a in touches)
    assert {action for function, action in writes if function == "Bearer"} == {
        "dynamodb:UpdateItem"}


@pytest.mark.parametrize("action", WRITES)
def test_no_role_but_the_token_admins_may_issue_or_change_a_token(sam, aws, settings, action):
    resolver = StackResolver(sam, _physical(aws, settings, sam), stack=STACK)
    write = Request(action, table_arn(settings.runs_table),
                    {"dynamodb:LeadingKeys": ["TOKEN#0123abcd"],
                     "dynamodb:Attributes": ["pk", "sk", "role", "tokenId"]})
    allowed = {function for function, role in _roles(sam).items()
               if decision(resolver.role_statements(role), write) == "Allow"}
    assert allowed == ({"TokenAdmin"} if action in ("dynamodb:PutItem", "dynamodb:DeleteItem")
                       else set())
