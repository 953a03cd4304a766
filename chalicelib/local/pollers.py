"""The local stand-ins for Lambda's event sources: SQS pollers, the scheduler and the stream.

Each calls the same Chalice handler Lambda would, with an event of the same shape.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from chalice.local import LambdaContext

log = logging.getLogger("runs.local")

ACCOUNT_ID = "123456789012"  # moto's default account, as in the queue ARNs it returns
Handler = Callable[[dict[str, Any], Any], Any]
ContextFactory = Callable[[], Any]


def lambda_context(function_name: str, timeout_s: int, memory_mb: int = 512) -> ContextFactory:
    """A factory of Lambda contexts whose remaining time counts down from `timeout_s`."""
    return lambda: LambdaContext(function_name, memory_mb, max_runtime_ms=timeout_s * 1000)


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """boto3's message attribute shape → the Lambda event's (lower camel case)."""
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType", "String"),
    }


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """A Lambda SQS event for messages as returned by ReceiveMessage."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": {
                    name: _message_attribute(value)
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def scheduled_event(at: datetime, region: str, rule_name: str) -> dict[str, Any]:
    """An EventBridge "Scheduled Event" as a rate/cron rule delivers it to Lambda."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


def failed_message_ids(result: Any) -> set[str]:
    """The message ids a handler reported in `batchItemFailures` (partial batch response)."""
    if not isinstance(result, dict):
        return set()
    return {item["itemIdentifier"] for item in result.get("batchItemFailures") or []}


class QueuePoller(threading.Thread):
    """Long-polls one SQS queue and hands each batch to a handler, like an event source mapping.

    A message is deleted once the handler returns without listing it in `batchItemFailures`;
    if the handler raises, the whole batch stays for redelivery after the visibility timeout,
    so the queue's redrive policy moves poison messages to the DLQ as on AWS.
    """

    def __init__(self, name: str, queue: Any, handler: Handler, *, queue_arn: str, region: str,
                 batch_size: int, wait_seconds: int, context: ContextFactory,
                 stop_event: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.queue = queue
        self.handler = handler
        self.queue_arn = queue_arn
        self.region = region
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.context = context
        self.stop_event = stop_event
        self.in_flight: list[dict[str, Any]] = []  # the batch the handler is working on

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                messages = self.queue.receive(max_messages=self.batch_size,
                                              wait_seconds=self.wait_seconds)
            except Exception:  # noqa: BLE001 - a poller outlives transient endpoint errors
                if self.stop_event.is_set():
                    break
                log.exception("%s: receive failed; retrying in 1 s", self.name)
                self.stop_event.wait(1.0)
                continue
            if messages and self.stop_event.is_set():
                self._release(messages)  # stopping: leave them for the next start
            elif messages:
                self.deliver(messages)

    def deliver(self, messages: Sequence[dict[str, Any]]) -> None:
        """Invoke the handler with one batch and delete the messages it processed."""
        event = sqs_event(messages, self.queue_arn, self.region)
        self.in_flight = list(messages)
        try:
            result = self.handler(event, self.context())
        except Exception:  # noqa: BLE001 - as Lambda: log, keep the batch for redelivery
            log.exception("%s: handler raised; %d message(s) left for redelivery",
                          self.name, len(messages))
            return
        finally:
            self.in_flight = []
        failed = failed_message_ids(result)
        for message in messages:
            if message["MessageId"] in failed:
                log.warning("%s: message %s reported failed; left for redelivery",
                            self.name, message["MessageId"])
                continue
            self.queue.delete(message["ReceiptHandle"])

    def release_unfinished(self) -> list[dict[str, Any]]:
        """Stopping while the handler still works: make its batch visible again (SQS
        ChangeMessageVisibility 0), so the next start redelivers it; returns the bodies."""
        unfinished = list(self.in_flight)
        self._release(unfinished)
        return [json.loads(message["Body"]) for message in unfinished]

    def _release(self, messages: Sequence[dict[str, Any]]) -> None:
        for message in messages:
            try:
                self.queue.change_visibility(message["ReceiptHandle"], 0)
            except Exception:  # noqa: BLE001 - the visibility timeout brings it back anyway
                log.warning("%s: could not release message %s", self.name, message["MessageId"])


class Scheduler(threading.Thread):
    """Calls a scheduled handler at the start of every period (every minute by default)."""

    def __init__(self, handler: Handler, *, period_s: float, region: str, rule_name: str,
                 context: ContextFactory, stop_event: threading.Event,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(name="scheduler", daemon=True)
        self.handler = handler
        self.period_s = period_s
        self.region = region
        self.rule_name = rule_name
        self.context = context
        self.stop_event = stop_event
        self.clock = clock

    def next_due(self, now: float) -> float:
        """The next multiple of the period after `now` (the start of the next minute)."""
        return (now // self.period_s + 1) * self.period_s

    def run(self) -> None:
        while True:
            now = self.clock()
            due = self.next_due(now)
            if self.stop_event.wait(due - now):
                break
            self.fire(datetime.fromtimestamp(due, tz=timezone.utc))

    def fire(self, at: datetime) -> Any:
        """Invoke the handler once for the schedule time `at`; errors are logged, not raised."""
        try:
            return self.handler(scheduled_event(at, self.region, self.rule_name), self.context())
        except Exception:  # noqa: BLE001 - the next tick retries, as EventBridge would
            log.exception("scheduler: tick at %s raised", at.isoformat())
            return None


class StreamThread(threading.Thread):
    """Runs the DynamoDB stream poller (list counters) until the stop event is set."""

    def __init__(self, poller: Any, *, interval_s: float, stop_event: threading.Event) -> None:
        super().__init__(name="stream", daemon=True)
        self.poller = poller
        self.interval_s = interval_s
        self.stop_event = stop_event

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poller.run_forever(self.stop_event, self.interval_s)
            except Exception:  # noqa: BLE001 - keep the counters flowing after a failure
                log.exception("stream: poller failed; restarting in 1 s")
                self.stop_event.wait(1.0)
