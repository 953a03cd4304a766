"""aws/* and email/send actions against moto."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.actions.aws import aws_errors
from chalicelib.actions.base import Boto3Clients
from chalicelib.actions.registry import default_registry
from chalicelib.domain.retry import ActionError
from chalicelib.settings import Settings
from tests.support.fixtures import action_context

REGISTRY = default_registry()


@pytest.fixture
def moto():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def run(kind: str, operator: str, props: dict, **ctx_fields):
    ctx = action_context(props=props, clients=Boto3Clients(Settings()), **ctx_fields)
    return REGISTRY.execute(kind, operator, ctx)


def test_sqs_send_by_name_delivers_json_with_the_idempotency_key(moto):
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    output = run("aws", "sqs-send", {"queueName": "orders", "messageBody": {"id": 7}})
    [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert output["messageId"] == message["MessageId"]
    assert json.loads(message["Body"]) == {"id": 7}
    assert message["MessageAttributes"]["IdempotencyKey"]["StringValue"] == "run-1:step"


def test_sqs_send_to_a_fifo_queue_deduplicates_repeated_attempts(moto):
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    run("aws", "sqs-send", {"queueUrl": url, "messageBody": "hello"})
    run("aws", "sqs-send", {"queueUrl": url, "messageBody": "hello"}, attempt=2)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1


def test_sqs_send_to_a_missing_queue_is_not_retryable(moto):
    with pytest.raises(ActionError) as raised:
        run("aws", "sqs-send", {"queueName": "ghost", "messageBody": "x"})
    assert raised.value.retryable is False
    assert "NonExistentQueue" in raised.value.error_type


def test_sns_publish_returns_the_message_id(moto):
    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-copy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    output = run("aws", "sns-publish", {"topicArn": topic, "message": {"a": 1}, "subject": "S"})
    [delivered] = sqs.receive_message(QueueUrl=queue)["Messages"]
    envelope = json.loads(delivered["Body"])
    assert envelope["MessageId"] == output["messageId"]
    assert json.loads(envelope["Message"]) == {"a": 1} and envelope["Subject"] == "S"


def test_eventbridge_put_single_event_and_entries(moto):
    one = run("aws", "eventbridge-put", {"source": "app", "detailType": "Did", "detail": {"x": 1}})
    assert len(one["eventIds"]) == 1 and one["eventIds"][0]
    many = run("aws", "eventbridge-put", {"entries": [
        {"source": "app", "detailType": "A"}, {"source": "app", "detailType": "B"}]})
    assert len(many["eventIds"]) == 2


def test_dynamodb_put_stores_plain_json_items(moto):
    ddb = moto.client("dynamodb")
    ddb.create_table(TableName="users", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    item = {"id": "u1", "age": 41, "score": 9.5, "tags": ["a"], "profile": {"ok": True}}
    assert run("aws", "dynamodb-put", {"tableName": "users", "item": item}) == {
        "tableName": "users"}
    stored = moto.resource("dynamodb").Table("users").get_item(Key={"id": "u1"})["Item"]
    assert stored["age"] == 41 and float(stored["score"]) == 9.5
    assert stored["tags"] == ["a"] and stored["profile"] == {"ok": True}


def test_email_send_through_ses_with_a_verified_identity(moto):
    ses = moto.client("ses")
    ses.verify_email_identity(EmailAddress="noreply@example.com")
    output = run("email", "send", {"from": "noreply@example.com", "to": "ada@example.com",
                                   "subject": "Hi", "text": "Welcome", "html": "<b>Hi</b>"})
    assert output["messageId"]
    assert ses.get_send_quota()["SentLast24Hours"] == 1


def test_email_from_an_unverified_identity_is_not_retryable(moto):
    with pytest.raises(ActionError) as raised:
        run("email", "send", {"from": "who@example.com", "to": ["a@example.com"],
                              "subject": "Hi", "text": "x"})
    assert (raised.value.error_type, raised.value.retryable) == ("MessageRejected", False)


def client_error(code: str, status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": code},
                "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Op")


@pytest.mark.parametrize("code, status, retryable", [
    ("ThrottlingException", 400, True),
    ("ProvisionedThroughputExceededException", 400, True),
    ("ServiceUnavailable", 503, True),
    ("AccessDeniedException", 403, False),
    ("ValidationException", 400, False),
])
def test_aws_errors_retry_only_throttling_and_server_errors(code, status, retryable):
    with pytest.raises(ActionError) as raised, aws_errors("op"):
        raise client_error(code, status)
    assert (raised.value.error_type, raised.value.retryable) == (code, retryable)


def test_clients_are_cached_per_service_and_timeout(moto):
    clients = Boto3Clients(Settings())
    assert clients("sqs", 5) is clients("sqs", 5)
    assert clients("sqs", 5) is not clients("sqs", 30)
    assert clients("sqs", 5).meta.config.read_timeout == 5
