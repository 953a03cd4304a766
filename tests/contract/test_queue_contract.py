"""One MessageQueue contract, run against the in-memory twin and SqsQueue on moto."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.memory import MemoryQueue
from chalicelib.adapters.sqs_queue import QueueNotFound, SqsQueue, clamp_delay

BODY = {"runId": "3f1c", "stepIndex": 2, "token": "t-1", "nested": {"list": [1, 2.5, None]},
        "text": "grüße ✓"}


class QueueContract:
    """What every MessageQueue does; subclasses give a queue and a way to read back bodies."""

    @pytest.fixture
    def queue(self):
        raise NotImplementedError

    def sent_bodies(self, queue) -> list[dict]:
        raise NotImplementedError

    def test_sent_body_is_received_unchanged(self, queue):
        queue.send(BODY)
        assert self.sent_bodies(queue) == [BODY]

    def test_each_send_returns_its_own_message_id(self, queue):
        ids = {queue.send({"n": n}) for n in range(5)}
        assert len(ids) == 5 and all(isinstance(i, str) and i for i in ids)
        assert sorted(b["n"] for b in self.sent_bodies(queue)) == [0, 1, 2, 3, 4]

    def test_delay_beyond_fifteen_minutes_is_accepted(self, queue):
        assert queue.send({"late": True}, delay_seconds=7 * 24 * 3600)

    def test_negative_delay_is_accepted(self, queue):
        queue.send({"now": True}, delay_seconds=-5)
        assert self.sent_bodies(queue) == [{"now": True}]


class TestMemoryQueue(QueueContract):
    @pytest.fixture
    def queue(self):
        return MemoryQueue()

    def sent_bodies(self, queue):
        return [body for body, _delay in queue.drain()]


class TestSqsQueue(QueueContract):
    @pytest.fixture
    def queue(self, aws, settings):
        return SqsQueue(settings.step_queue, settings)

    def sent_bodies(self, queue):
        bodies = []
        while batch := queue.receive(max_messages=10, wait_seconds=0):
            bodies += [json.loads(message["Body"]) for message in batch]
            for message in batch:
                queue.delete(message["ReceiptHandle"])
        return bodies

    def test_delayed_message_stays_hidden(self, queue):
        queue.send({"later": True}, delay_seconds=600)
        assert queue.receive(max_messages=10, wait_seconds=0) == []

    def test_received_message_carries_id_handle_and_attributes(self, queue):
        message_id = queue.send(BODY)
        (message,) = queue.receive(max_messages=1, wait_seconds=0)
        assert message["MessageId"] == message_id
        assert message["ReceiptHandle"]
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"

    def test_deleted_message_is_gone_from_the_queue(self, queue):
        queue.send(BODY)
        (message,) = queue.receive(max_messages=1, wait_seconds=0)
        queue.delete(message["ReceiptHandle"])
        attributes = queue.client.get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "0",
                              "ApproximateNumberOfMessagesNotVisible": "0"}

    def test_arn_names_the_queue(self, queue, settings):
        assert queue.arn.endswith(f":{settings.step_queue}")

    def test_unknown_queue_is_reported_by_name(self, aws, settings):
        with pytest.raises(QueueNotFound) as raised:
            SqsQueue("no-such-queue", settings).send(BODY)
        assert raised.value.name == "no-such-queue"


def test_queue_url_is_looked_up_once_and_delay_is_clamped(settings):
    client = boto3.session.Session(region_name="us-east-1").client("sqs")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/automation-runs-steps"
    with Stubber(client) as stub:
        stub.add_response("get_queue_url", {"QueueUrl": url}, {"QueueName": "automation-runs-steps"})
        for delay in (900, 0, 30):
            stub.add_response("send_message", {"MessageId": f"m-{delay}"}, {
                "QueueUrl": url, "MessageBody": '{"a":1}', "DelaySeconds": delay})
        queue = SqsQueue("automation-runs-steps", settings, client=client)
        assert queue.send({"a": 1}, delay_seconds=5000) == "m-900"
        assert queue.send({"a": 1}, delay_seconds=-1) == "m-0"
        assert queue.send({"a": 1}, delay_seconds=30.7) == "m-30"
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("asked, sent", [(-3, 0), (0, 0), (1.9, 1), (900, 900), (86400, 900)])
def test_clamp_delay_keeps_sqs_bounds(asked, sent):
    assert clamp_delay(asked) == sent


def test_client_honours_the_endpoint_variable(monkeypatch, settings):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert SqsQueue("q", settings).client.meta.endpoint_url == "http://127.0.0.1:4566"
