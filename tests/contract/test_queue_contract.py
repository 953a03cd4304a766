"""One MessageQueue contract, run against the in-memory twin, SqsQueue on moto and the
SQLite queue; the SQS semantics the local pollers rely on (delays, visibility timeout,
receive counts, redrive, receipt handles) run against SQS on moto and the SQLite queue."""
from __future__ import annotations

import json
import threading
import time
import uuid

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.adapters.memory import MemoryQueue
from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.adapters.sqlite_queue import QueueAttributes, SqliteQueue, create_queue
from chalicelib.adapters.sqs_queue import QueueNotFound, SqsQueue, clamp_delay
from chalicelib.settings import Settings as Settings_

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


class DedupContract:
    """A queue deduplicating sends (the FIFO exhausted-runs queue, and its twin)."""

    def test_a_send_repeated_with_its_dedup_id_is_delivered_once(self, dedup_queue):
        dedup_queue.send({"runId": "r1"}, dedup_id="exhausted:r1")
        dedup_queue.send({"runId": "r1"}, dedup_id="exhausted:r1")  # retried after a lost answer
        dedup_queue.send({"runId": "r2"}, dedup_id="exhausted:r2")
        assert sorted(b["runId"] for b in self.sent_bodies(dedup_queue)) == ["r1", "r2"]


class TestMemoryQueue(QueueContract, DedupContract):
    @pytest.fixture
    def dedup_queue(self):
        return MemoryQueue()

    def test_visibility_asked_for_is_kept_by_receipt_handle(self):
        queue = MemoryQueue()
        queue.change_visibility("handle-1", 15)
        assert queue.visibility == {"handle-1": 15}

    @pytest.fixture
    def queue(self):
        return MemoryQueue()

    def sent_bodies(self, queue):
        return [body for body, _delay in queue.drain()]


def received_bodies(queue) -> list[dict]:
    """Receive and delete every visible message; their bodies."""
    bodies = []
    while batch := queue.receive(max_messages=10, wait_seconds=0):
        bodies += [json.loads(message["Body"]) for message in batch]
        for message in batch:
            queue.delete(message["ReceiptHandle"])
    return bodies


class TestSqliteQueue(QueueContract):
    @pytest.fixture
    def queue(self, tmp_path):
        db = SqliteDatabase(tmp_path / "runs.db")
        create_queue(db, "steps", QueueAttributes(visibility_timeout=30))
        return SqliteQueue("steps", db)

    def sent_bodies(self, queue):
        return received_bodies(queue)

    def test_unknown_queue_is_reported_by_name(self, tmp_path):
        with pytest.raises(QueueNotFound) as raised:
            SqliteQueue("no-such-queue", SqliteDatabase(tmp_path / "runs.db")).send(BODY)
        assert raised.value.name == "no-such-queue"

    def test_messages_survive_reopening_the_database_file(self, tmp_path):
        path = tmp_path / "runs.db"
        db = SqliteDatabase(path)
        create_queue(db, "steps", QueueAttributes(visibility_timeout=30))
        SqliteQueue("steps", db).send(BODY)
        SqliteQueue("steps", db).send({"later": True}, delay_seconds=600)
        db.close()

        reopened = SqliteQueue("steps", SqliteDatabase(path))
        assert received_bodies(reopened) == [BODY]
        assert reopened.counts() == {"visible": 0, "inFlight": 0, "delayed": 1}

    def test_release_in_flight_makes_received_messages_visible_and_keeps_delays(self, queue):
        queue.send({"n": 1})
        queue.send({"n": 2}, delay_seconds=600)
        (message,) = queue.receive(max_messages=10, wait_seconds=0)

        assert queue.release_in_flight() == 1

        (again,) = queue.receive(max_messages=10, wait_seconds=0)
        assert again["MessageId"] == message["MessageId"]
        assert again["Attributes"]["ApproximateReceiveCount"] == "2"
        assert queue.counts() == {"visible": 0, "inFlight": 1, "delayed": 1}

    def test_concurrent_receivers_never_share_a_message(self, queue):
        for n in range(60):
            queue.send({"n": n})
        seen: list[int] = []
        lock = threading.Lock()

        def consume():
            while batch := queue.receive(max_messages=3, wait_seconds=0):
                with lock:
                    seen.extend(json.loads(m["Body"])["n"] for m in batch)

        workers = [threading.Thread(target=consume) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(seen) == list(range(60))

    def test_a_long_poll_wakes_when_a_message_is_sent(self, queue):
        threading.Timer(0.2, queue.send, args=({"woke": True},)).start()
        started = time.monotonic()
        (message,) = queue.receive(max_messages=1, wait_seconds=5)
        assert json.loads(message["Body"]) == {"woke": True}
        assert time.monotonic() - started < 1.0


    def test_a_send_wakes_one_waiting_poll_not_every_poll(self, queue, monkeypatch):
        """Two consumers long-polling, one message: one of them is woken to take it; the
        other keeps waiting instead of running an empty receive."""
        from chalicelib.adapters import sqlite_queue  # noqa: PLC0415

        monkeypatch.setattr(sqlite_queue, "POLL_INTERVAL_S", 60.0)  # no timer wake-ups
        claims = []
        claim = SqliteQueue._claim
        monkeypatch.setattr(SqliteQueue, "_claim",
                            lambda self, count: claims.append(1) or claim(self, count))
        got: list[list] = []
        polls = [threading.Thread(target=lambda: got.append(queue.receive(1, wait_seconds=20)))
                 for _ in range(2)]
        for poll in polls:
            poll.start()
        while len(queue._wakeup.condition._waiters) < 2:  # both polls are waiting
            time.sleep(0.01)
        queue.send({"one": True})
        while not got:
            time.sleep(0.01)
        waiting, claimed = len(queue._wakeup.condition._waiters), len(claims)
        queue.send({"two": True})  # for the other poll
        for poll in polls:
            poll.join()

        assert waiting == 1 and claimed == 2 + 1  # each poll's first look, then one wake-up
        assert [len(messages) for messages in got] == [1, 1] and len(claims) == 4


class TestSqsQueue(QueueContract, DedupContract):
    @pytest.fixture
    def queue(self, aws, settings):
        return SqsQueue(settings.step_queue, settings)

    @pytest.fixture
    def dedup_queue(self, aws, settings):
        queue = SqsQueue(settings.exhausted_queue, settings)
        assert queue.fifo
        return queue

    def test_a_received_message_is_hidden_for_the_visibility_asked_and_no_longer(self, queue):
        queue.send(BODY)
        (message,) = queue.receive(max_messages=1, wait_seconds=0)
        queue.change_visibility(message["ReceiptHandle"], 600)
        assert queue.receive(max_messages=1, wait_seconds=0) == []
        queue.change_visibility(message["ReceiptHandle"], 0)  # handed back at once
        (again,) = queue.receive(max_messages=1, wait_seconds=0)
        assert again["Attributes"]["ApproximateReceiveCount"] == "2"

    def sent_bodies(self, queue):
        return received_bodies(queue)

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


class SqsSemantics:
    """What SQS does and the local pollers rely on; `queues(visibility, max_receive)` gives
    a fresh queue and its dead-letter queue."""

    @pytest.fixture
    def queues(self):
        raise NotImplementedError

    def test_delayed_message_is_hidden_until_due(self, queues):
        queue, _ = queues(visibility=30, max_receive=5)
        queue.send({"later": True}, delay_seconds=1)
        assert queue.receive(max_messages=10, wait_seconds=0) == []
        (message,) = queue.receive(max_messages=10, wait_seconds=3)
        assert json.loads(message["Body"]) == {"later": True}

    def test_received_message_carries_id_handle_and_attributes(self, queues):
        queue, _ = queues(visibility=30, max_receive=5)
        message_id = queue.send(BODY)
        (message,) = queue.receive(max_messages=1, wait_seconds=0)
        assert message["MessageId"] == message_id
        assert message["ReceiptHandle"]
        assert json.loads(message["Body"]) == BODY
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"
        assert int(message["Attributes"]["SentTimestamp"]) > 0

    def test_received_message_is_hidden_for_the_visibility_timeout(self, queues):
        queue, _ = queues(visibility=1, max_receive=5)
        queue.send({"n": 1})
        (first,) = queue.receive(max_messages=10, wait_seconds=0)
        assert queue.receive(max_messages=10, wait_seconds=0) == []
        (again,) = queue.receive(max_messages=10, wait_seconds=3)
        assert again["MessageId"] == first["MessageId"]
        assert again["ReceiptHandle"] != first["ReceiptHandle"]
        assert again["Attributes"]["ApproximateReceiveCount"] == "2"

    def test_deleted_message_is_not_redelivered(self, queues):
        queue, _ = queues(visibility=1, max_receive=5)
        queue.send({"n": 1})
        (message,) = queue.receive(max_messages=10, wait_seconds=0)
        queue.delete(message["ReceiptHandle"])
        assert queue.receive(max_messages=10, wait_seconds=2) == []

    def test_batch_size_is_respected(self, queues):
        queue, _ = queues(visibility=30, max_receive=5)
        for n in range(5):
            queue.send({"n": n})
        assert len(queue.receive(max_messages=3, wait_seconds=0)) == 3
        assert len(queue.receive(max_messages=3, wait_seconds=0)) == 2

    def test_message_moves_to_the_dead_letter_queue_after_max_receive_count(self, queues):
        queue, dlq = queues(visibility=1, max_receive=2)
        message_id = queue.send({"poison": True})
        counts = []
        deadline = time.monotonic() + 8
        while len(counts) < 2 and time.monotonic() < deadline:
            for message in queue.receive(max_messages=10, wait_seconds=1):
                counts.append(message["Attributes"]["ApproximateReceiveCount"])
        assert counts == ["1", "2"]
        time.sleep(1.1)
        assert queue.receive(max_messages=10, wait_seconds=0) == []  # this receive redrives
        (dead,) = dlq.receive(max_messages=10, wait_seconds=2)
        assert dead["MessageId"] == message_id
        assert json.loads(dead["Body"]) == {"poison": True}

    def test_visibility_change_to_zero_makes_a_message_visible_again(self, queues):
        queue, _ = queues(visibility=30, max_receive=5)
        queue.send({"n": 1})
        (message,) = queue.receive(max_messages=10, wait_seconds=0)
        assert queue.change_visibility(message["ReceiptHandle"], 0) is True
        (again,) = queue.receive(max_messages=10, wait_seconds=1)
        assert again["MessageId"] == message["MessageId"]


class TestSqsSemanticsOnMoto(SqsSemantics):
    @pytest.fixture
    def queues(self):
        with mock_aws():
            yield self._factory(boto3.client("sqs", region_name="us-east-1"))

    @staticmethod
    def _factory(sqs):
        settings_ = Settings_()

        def make(visibility: int, max_receive: int):
            name = f"q-{uuid.uuid4().hex[:8]}"
            dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
            redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
            sqs.create_queue(QueueName=name, Attributes={
                "VisibilityTimeout": str(visibility), "RedrivePolicy": redrive})
            return (SqsQueue(name, settings_, client=sqs),
                    SqsQueue(f"{name}-dlq", settings_, client=sqs))

        return make


class TestSqsSemanticsOnSqlite(SqsSemantics):
    @pytest.fixture
    def queues(self, tmp_path):
        db = SqliteDatabase(tmp_path / "runs.db")

        def make(visibility: int, max_receive: int):
            name = f"q-{uuid.uuid4().hex[:8]}"
            create_queue(db, f"{name}-dlq", QueueAttributes(visibility_timeout=30))
            create_queue(db, name, QueueAttributes(visibility_timeout=visibility,
                                                   dead_letter=f"{name}-dlq",
                                                   max_receive_count=max_receive))
            return SqliteQueue(name, db), SqliteQueue(f"{name}-dlq", db)

        return make

    def test_a_superseded_receipt_handle_deletes_nothing(self, queues):
        queue, _ = queues(visibility=1, max_receive=5)
        queue.send({"n": 1})
        (first,) = queue.receive(max_messages=10, wait_seconds=0)
        (second,) = queue.receive(max_messages=10, wait_seconds=3)
        queue.delete(first["ReceiptHandle"])
        assert queue.change_visibility(first["ReceiptHandle"], 0) is False
        queue.delete(second["ReceiptHandle"])
        assert queue.counts() == {"visible": 0, "inFlight": 0, "delayed": 0}
