"""The steps `make deploy` / `make destroy` run after the SAM CLI, on moto: the first admin
token is issued once and kept as a SecureString where the stack's output says."""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters.dynamo_markers import DynamoTokenStore
from chalicelib.services.tokens import authenticate
from infra.stack import admin_token_parameter, first_token, forget, show

STACK = "automation-runs-dev"


@pytest.fixture
def stack(aws, settings):
    """A deployed stack as CloudFormation describes it: its outputs, on moto's resources."""
    outputs = {"AdminTokenParameter": admin_token_parameter(STACK),
               "RunsTableName": settings.runs_table, "ApiUrl": "https://abc.example/v1",
               "SecretsPath": f"/{STACK}/secrets/", "PayloadBucketName": settings.payload_bucket}
    template = {"Resources": {"Alerts": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    aws.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    return aws


def _stored(session) -> dict:
    return session.client("ssm").get_parameter(
        Name=admin_token_parameter(STACK), WithDecryption=True)["Parameter"]


def test_first_deploy_stores_a_working_admin_token_as_a_secure_string(stack, settings):
    message = first_token(stack, STACK)
    assert message.endswith(f"stored at /{STACK}/admin-token")
    parameter = _stored(stack)
    assert parameter["Type"] == "SecureString"
    record = authenticate(DynamoTokenStore(settings), f"Bearer {parameter['Value']}")
    assert record.role == "admin"


def test_later_deploys_keep_the_first_token(stack):
    first_token(stack, STACK)
    kept = _stored(stack)["Value"]
    assert first_token(stack, STACK) == f"admin token already stored at /{STACK}/admin-token (kept)"
    assert _stored(stack)["Value"] == kept


def test_show_tells_how_to_reach_the_stage_and_what_outlives_it(stack, settings):
    text = show(stack, STACK)
    assert "export RUNS_URL=https://abc.example/v1" in text
    assert f"--name /{STACK}/admin-token" in text
    assert f"aws ssm put-parameter --type SecureString --name /{STACK}/secrets/NAME" in text
    assert f"table {settings.runs_table}" in text and f"bucket {settings.payload_bucket}" in text


def test_destroy_forgets_the_admin_token_once(stack):
    first_token(stack, STACK)
    assert forget(stack, STACK) == f"deleted /{STACK}/admin-token"
    assert forget(stack, STACK) == f"no admin token at /{STACK}/admin-token"


def test_the_token_location_is_the_templates_output(sam):
    assert sam["Outputs"]["AdminTokenParameter"]["Value"]["Fn::Sub"] == \
        admin_token_parameter("${AWS::StackName}")
