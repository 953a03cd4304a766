"""Shared fixtures. The environment is set before anything imports `app` or the models,
because Chalice decorators and PynamoDB table names are read at import."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "AutomationRuns",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        # What `make run` loads for a new user; deployed functions read their packaged copy.
        "AUTOMATIONS_DIR": str(Path(__file__).resolve().parents[1] / "examples"),
    }
)
for _var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
             "AWS_PROFILE", "RUNS_DEV_TOKEN"):
    os.environ.pop(_var, None)

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib.bootstrap import Container, use_container  # noqa: E402
from chalicelib.local.atomic import make_moto_dynamodb_atomic  # noqa: E402
from chalicelib.local.resources import create_resources  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from tests.support.fixtures import http_sink  # noqa: E402,F401 - shared fixture


@pytest.fixture
def aws():
    """moto in-process AWS with the template's tables, queues and buckets created."""
    make_moto_dynamodb_atomic()
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        create_resources(session)
        yield session


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def aws_container(aws, settings):
    """A container wired to the AWS adapters on moto, installed for the app's handlers."""
    built = Container(settings=settings)
    use_container(built)
    yield built
    use_container(None)


@pytest.fixture(autouse=True)
def _action_outputs_match_their_documented_models(monkeypatch):
    """Every output an action returns in any test is checked against the model that
    docs/reference.md documents (ActionSpec.output)."""
    from chalicelib.actions.base import Halt, Wait
    from chalicelib.actions.registry import Registry

    original = Registry.execute

    def checked(self, action_type, operator, ctx):
        result = original(self, action_type, operator, ctx)
        spec = self.get(action_type, operator)
        if spec.output is not None and not isinstance(result, Wait):
            spec.output.model_validate(result.output if isinstance(result, Halt) else result)
        return result

    monkeypatch.setattr(Registry, "execute", checked)
