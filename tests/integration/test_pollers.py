"""The local event sources against a real moto server: Lambda-shaped events, deletes, redrive."""
from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone

import boto3
import pytest

from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.local.emulator import MotoEmulator
from chalicelib.local.pollers import QueuePoller, Scheduler, lambda_context
from chalicelib.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_endpoint():
    emulator = MotoEmulator(0)
    yield emulator.start()
    emulator.stop()


@pytest.fixture
def sqs(moto_endpoint):
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


@pytest.fixture
def queues(sqs):
    """A fresh queue (visibility 1 s) whose redrive policy moves messages to a DLQ after 2."""
    name = f"steps-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1",
                                                 "RedrivePolicy": redrive})
    settings = Settings(region="us-east-1")
    return SqsQueue(name, settings, client=sqs), SqsQueue(f"{name}-dlq", settings, client=sqs)


def poller(queue, handler, stop_event=None, timeout_s=900):
    return QueuePoller("test-worker", queue, handler, queue_arn=queue.arn, region="us-east-1",
                       batch_size=10, wait_seconds=1, context=lambda_context("fn", timeout_s),
                       stop_event=stop_event or threading.Event())


def receive_all(queue, expected, timeout=10.0):
    """Receive until `expected` messages arrived (or the timeout passed)."""
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        messages += queue.receive(max_messages=10, wait_seconds=1)
    return messages


def test_handler_receives_a_lambda_shaped_event_and_a_counting_down_context(queues):
    queue, _ = queues
    queue.send({"runId": "r1", "stepIndex": 0})
    queue.send({"runId": "r2", "stepIndex": 0})
    seen = {}

    def handler(event, context):
        seen["event"], seen["remaining"] = event, context.get_remaining_time_in_millis()

    poller(queue, handler, timeout_s=30).deliver(receive_all(queue, 2))

    records = seen["event"]["Records"]
    assert len({record["messageId"] for record in records}) == 2
    assert {json.loads(record["body"])["runId"] for record in records} == {"r1", "r2"}
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == queue.arn
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert record["receiptHandle"]
    assert 0 < seen["remaining"] <= 30_000


def test_processed_messages_are_deleted_and_reported_failures_are_redelivered(queues):
    queue, _ = queues
    queue.send({"n": 1})
    queue.send({"n": 2})
    messages = receive_all(queue, 2)
    failing = next(m["MessageId"] for m in messages if json.loads(m["Body"])["n"] == 2)

    poller(queue, lambda event, context: {"batchItemFailures": [{"itemIdentifier": failing}]}
           ).deliver(messages)

    again = receive_all(queue, 1)  # visible again after the 1 s visibility timeout
    assert [m["MessageId"] for m in again] == [failing]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert receive_all(queue, 1, timeout=2.5) == []  # the other one was deleted


def test_a_crashing_handler_leaves_messages_until_the_redrive_moves_them_to_the_dlq(queues):
    queue, dlq = queues
    queue.send({"poison": True})
    calls = []

    def crash(event, context):
        calls.append(event["Records"][0]["attributes"]["ApproximateReceiveCount"])
        raise RuntimeError("executor crashed")

    stop = threading.Event()
    worker = poller(queue, crash, stop)
    worker.start()
    try:
        dead = receive_all(dlq, 1, timeout=15)
    finally:
        stop.set()
        worker.join(timeout=10)

    assert [json.loads(m["Body"]) for m in dead] == [{"poison": True}]
    assert calls == ["1", "2"]


def test_scheduler_fires_at_period_boundaries_with_a_scheduled_event():
    fired = []
    scheduler = Scheduler(lambda event, context: fired.append(event), period_s=60,
                          region="us-east-1", rule_name="app-tick",
                          context=lambda_context("tick", 120), stop_event=threading.Event())

    assert scheduler.next_due(119.5) == 120
    assert scheduler.next_due(120.0) == 180
    scheduler.fire(datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc))

    event = fired[0]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-01-02T03:04:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/app-tick"]


def test_scheduler_survives_a_failing_tick():
    def broken(event, context):
        raise RuntimeError("tick failed")

    scheduler = Scheduler(broken, period_s=60, region="us-east-1", rule_name="app-tick",
                          context=lambda_context("tick", 120), stop_event=threading.Event())

    assert scheduler.fire(datetime(2026, 1, 2, tzinfo=timezone.utc)) is None


def test_a_batch_still_running_at_stop_is_released_for_the_next_start(tmp_path):
    from chalicelib.adapters.sqlite_db import SqliteDatabase
    from chalicelib.adapters.sqlite_queue import QueueAttributes, SqliteQueue, create_queue

    db = SqliteDatabase(tmp_path / "runs.db")
    create_queue(db, "steps", QueueAttributes(visibility_timeout=5400))
    queue = SqliteQueue("steps", db)
    queue.send({"runId": "r1", "stepIndex": 1})
    started, finish = threading.Event(), threading.Event()

    def slow(event, context):
        started.set()
        finish.wait(10)

    stop = threading.Event()
    worker = poller(queue, slow, stop)
    worker.start()
    assert started.wait(5)
    stop.set()

    assert worker.release_unfinished() == [{"runId": "r1", "stepIndex": 1}]
    (again,) = queue.receive(max_messages=10, wait_seconds=0)  # not after 5400 s: now
    assert json.loads(again["Body"]) == {"runId": "r1", "stepIndex": 1}
    finish.set()
    worker.join(timeout=5)
