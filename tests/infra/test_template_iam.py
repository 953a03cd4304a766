"""The hand-written IAM policies reach the packaged roles and grant what the code calls."""
from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import CHALICE_DIR
from .helpers import get_att, of_type, props, ref

TABLE = get_att("RunsTable", "Arn")
INDEXES = {"Fn::Sub": "${RunsTable.Arn}/index/*"}
ITEM_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:ConditionCheckItem",
                "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}
QUEUES = [get_att(q, "Arn") for q in ("StepQueue", "StepDeadLetterQueue", "ExhaustedRunsQueue")]


def _role_statements(resources, function: str) -> list[dict[str, Any]]:
    role_id = props(resources, function)["Role"]["Fn::GetAtt"][0]
    (policy,) = props(resources, role_id)["Policies"]
    return policy["PolicyDocument"]["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _granted(statements, resource: Any) -> set[str]:
    """Actions allowed on `resource` by plain (unconditional) statements."""
    return {
        action
        for statement in statements
        if statement.get("Effect") == "Allow" and resource in _as_list(statement.get("Resource"))
        for action in _as_list(statement["Action"])
    }


def _policy_file(name: str) -> dict[str, Any]:
    return json.loads((CHALICE_DIR / name).read_text(encoding="utf-8"))


POLICY_FILES = {"ExecuteSteps": "policy-executor.json", "CountRuns": "policy-count-runs.json"}


def test_each_function_role_carries_its_hand_written_policy(resources):
    functions = of_type(resources, "AWS::Serverless::Function")
    assert {"APIHandler", "ExecuteSteps", "ConsumeStepDlq", "Tick", "CountRuns"} <= set(functions)
    for function in functions:
        expected = _policy_file(POLICY_FILES.get(function, "policy-prod.json"))["Statement"]
        assert _role_statements(resources, function) == expected, function


def test_chalice_policy_autogeneration_is_off(chalice_config):
    assert chalice_config["autogen_policy"] is False
    assert chalice_config["iam_policy_file"] == "policy-prod.json"


@pytest.mark.parametrize("function", ["APIHandler", "Tick", "ConsumeStepDlq", "ExecuteSteps"])
def test_run_functions_may_use_the_table_its_indexes_queues_and_bucket(resources, function):
    statements = _role_statements(resources, function)
    assert ITEM_ACTIONS <= _granted(statements, TABLE)
    assert _granted(statements, INDEXES) == {"dynamodb:Query"}
    for queue in QUEUES:
        assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                "sqs:GetQueueAttributes", "sqs:GetQueueUrl"} <= _granted(statements, queue)
    assert {"s3:GetObject", "s3:PutObject"} == _granted(
        statements, {"Fn::Sub": "${PayloadBucket.Arn}/*"})


def test_count_runs_reads_the_stream_and_writes_counters_only(resources):
    statements = _role_statements(resources, "CountRuns")
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator",
            "dynamodb:DescribeStream"} <= _granted(statements, get_att("RunsTable", "StreamArn"))
    assert "dynamodb:UpdateItem" in _granted(statements, TABLE)
    granted_anywhere = {a for s in statements for a in _as_list(s["Action"])}
    assert not any(a.startswith(("sqs:", "s3:")) for a in granted_anywhere)


def test_aws_actions_are_granted_only_on_the_declared_targets(resources):
    conditional = [s["Fn::If"] for s in _role_statements(resources, "ExecuteSteps")
                   if "Fn::If" in s]
    by_condition = {condition: (granted, otherwise) for condition, granted, otherwise in conditional}
    expected = {
        "HasActionSnsTopics": ("ActionSnsTopicArns", {"sns:Publish"}),
        "HasActionSqsQueues": ("ActionSqsQueueArns", {"sqs:SendMessage", "sqs:GetQueueUrl"}),
        "HasActionEventBuses": ("ActionEventBusArns", {"events:PutEvents"}),
        "HasActionDynamoDbTables": ("ActionDynamoDbTableArns", {"dynamodb:PutItem"}),
        "HasActionSesIdentities": ("ActionSesIdentityArns", {"ses:SendEmail", "ses:SendRawEmail"}),
    }
    assert set(by_condition) == set(expected)
    for condition, (parameter, actions) in expected.items():
        granted, otherwise = by_condition[condition]
        assert granted["Resource"] == ref(parameter)
        assert set(granted["Action"]) == actions
        assert otherwise == ref("AWS::NoValue")


def test_no_role_grants_wildcard_actions_or_data_on_any_resource(resources):
    for role_id, role in of_type(resources, "AWS::IAM::Role").items():
        for statement in role["Policies"][0]["PolicyDocument"]["Statement"]:
            statement = statement["Fn::If"][1] if "Fn::If" in statement else statement
            actions = _as_list(statement["Action"])
            assert not any(action.endswith("*") for action in actions), role_id
            if statement["Resource"] == "*":
                # Only X-Ray and ListStreams have no resource-level permissions.
                assert all(a.startswith("xray:") or a == "dynamodb:ListStreams"
                           for a in actions), (role_id, actions)
