"""The roles of the packaged template: one per function, its own log group, secrets read on the
stack's path only, tracing only when enabled. (test_least_privilege.py checks each role against
the calls its function makes.)"""
from __future__ import annotations

from typing import Any

import pytest

from .helpers import get_att, of_type, props, ref

FUNCTIONS = {"APIHandler", "Bearer", "TokenAdmin", "ExecuteSteps", "ConsumeStepDlq", "Tick",
             "CountRuns"}
READS_SECRETS = {"APIHandler", "ExecuteSteps"}  # render templates / verify webhook HMACs
SSM_PATH = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${AWS::StackName}/secrets"
SECRET_ARNS = ("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
               "secret:${AWS::StackName}/secrets/*")


def _role_of(resources, function: str) -> str:
    return props(resources, function)["Role"]["Fn::GetAtt"][0]


def _statements(resources, role: str) -> list[dict[str, Any]]:
    (policy,) = props(resources, role)["Policies"]
    return policy["PolicyDocument"]["Statement"]


def _conditional(resources, role: str) -> dict[str, tuple[Any, Any]]:
    """Condition name → (first statement when true, when false) of the role's Fn::If ones."""
    found: dict[str, tuple[Any, Any]] = {}
    for statement in _statements(resources, role):
        if "Fn::If" in statement:
            condition, granted, otherwise = statement["Fn::If"]
            found.setdefault(condition, (granted, otherwise))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _all_actions(resources, role: str) -> set[str]:
    statements = [s["Fn::If"][1] if "Fn::If" in s else s for s in _statements(resources, role)]
    return {action for s in statements for action in _as_list(s["Action"])}


def test_each_function_has_a_role_of_its_own_and_no_role_is_left_over(resources, chalice_config):
    functions = of_type(resources, "AWS::Serverless::Function")
    assert set(functions) == FUNCTIONS
    roles = {function: _role_of(resources, function) for function in functions}
    assert len(set(roles.values())) == len(roles)
    assert set(roles.values()) == set(of_type(resources, "AWS::IAM::Role"))
    for role in roles.values():
        trust = props(resources, role)["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"}]
    # Chalice neither generates policies nor roles: infra/resources.yaml declares them.
    assert chalice_config["autogen_policy"] is False
    assert chalice_config["manage_iam_role"] is False


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_function_logs_to_its_own_group_and_may_write_only_there(sam, resources, function):
    group = props(resources, function)["LoggingConfig"]["LogGroup"]["Ref"]
    assert props(resources, group)["RetentionInDays"] == ref("LogRetentionDays")
    logs = [s for s in _statements(resources, _role_of(resources, function))
            if "Sid" in s and s["Sid"] == "Logs"]
    assert logs == [{"Sid": "Logs", "Effect": "Allow",
                     "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                     "Resource": get_att(group, "Arn")}]
    assert sam["Parameters"]["LogRetentionDays"]["Default"] == 30


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_tracing_and_its_permissions_follow_the_tracing_parameter(resources, function):
    assert props(resources, function)["Tracing"] == {
        "Fn::If": ["TracingEnabled", "Active", "PassThrough"]}
    managed = props(resources, _role_of(resources, function))["ManagedPolicyArns"]
    assert managed == {"Fn::If": [
        "TracingEnabled",
        [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"}],
        ref("AWS::NoValue")]}


@pytest.mark.parametrize("function", sorted(READS_SECRETS))
def test_secret_readers_read_only_the_stacks_secrets_path(resources, function):
    role = _role_of(resources, function)
    conditional = _conditional(resources, role)
    ssm, otherwise = conditional["SecretsInSsm"]
    assert otherwise == ref("AWS::NoValue")
    assert ssm["Action"] == "ssm:GetParametersByPath"
    assert ssm["Resource"] == [{"Fn::Sub": SSM_PATH}, {"Fn::Sub": SSM_PATH + "/*"}]
    secrets, otherwise = conditional["SecretsInSecretsManager"]
    assert otherwise == ref("AWS::NoValue")
    assert (secrets["Action"], secrets["Resource"]) == (
        "secretsmanager:GetSecretValue", {"Fn::Sub": SECRET_ARNS})
    (decrypt,) = [s for s in _statements(resources, role) if s.get("Sid") == "DecryptSecrets"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == [
        {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"},
        {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}]
    variables = props(resources, function)["Environment"]["Variables"]
    assert variables["SECRETS_BACKEND"] == ref("SecretsBackend")
    assert variables["SECRETS_PATH"] == {"Fn::Sub": "/${AWS::StackName}/secrets/"}
    assert variables["SECRETS_MAX_AGE_S"] == ref("SecretsMaxAgeSeconds")


@pytest.mark.parametrize("function", sorted(FUNCTIONS - READS_SECRETS))
def test_other_functions_can_read_no_secret(resources, function):
    actions = _all_actions(resources, _role_of(resources, function))
    assert not any(a.startswith(("ssm:", "secretsmanager:", "kms:")) for a in actions)
    assert "SECRETS_BACKEND" not in props(resources, function).get("Environment", {}).get(
        "Variables", {})


def test_aws_actions_are_granted_only_on_the_declared_targets(resources):
    by_condition = _conditional(resources, "ExecutorRole")
    expected = {
        "HasActionSnsTopics": ("ActionSnsTopicArns", {"sns:Publish"}),
        "HasActionSqsQueues": ("ActionSqsQueueArns", {"sqs:SendMessage", "sqs:GetQueueUrl"}),
        "HasActionEventBuses": ("ActionEventBusArns", {"events:PutEvents"}),
        "HasActionDynamoDbTables": ("ActionDynamoDbTableArns", {"dynamodb:PutItem"}),
        "HasActionSesIdentities": ("ActionSesIdentityArns", {"ses:SendEmail", "ses:SendRawEmail"}),
    }
    assert set(by_condition) >= set(expected) | {"SecretsInSsm", "SecretsInSecretsManager"}
    for condition, (parameter, actions) in expected.items():
        granted, otherwise = by_condition[condition]
        assert granted["Resource"] == ref(parameter)
        assert set(_as_list(granted["Action"])) == actions
        assert otherwise == ref("AWS::NoValue")


def test_no_role_grants_wildcard_actions_or_data_on_any_resource(resources):
    for role_id in of_type(resources, "AWS::IAM::Role"):
        for statement in _statements(resources, role_id):
            statement = statement["Fn::If"][1] if "Fn::If" in statement else statement
            actions = _as_list(statement["Action"])
            assert not any(action.endswith("*") for action in actions), role_id
            if statement["Resource"] == "*":
                # These have no resource-level permissions.
                assert set(actions) <= {"dynamodb:ListStreams", "secretsmanager:ListSecrets",
                                        "secretsmanager:BatchGetSecretValue"}, (role_id, actions)
