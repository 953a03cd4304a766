"""MessageQueue on Amazon SQS (step queue, exhausted-runs queue), plus the local pollers' calls."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from ..settings import Settings
from .aws_client import LazyClient

# SQS caps DelaySeconds at 15 minutes; longer waits are chained by the executor.
MAX_DELAY_SECONDS = 900
MAX_RECEIVE_MESSAGES = 10
MAX_WAIT_SECONDS = 20
MAX_VISIBILITY_SECONDS = 12 * 3600


class QueueNotFound(RuntimeError):
    """The configured queue does not exist on the endpoint: a deployment error, not bad input."""

    def __init__(self, name: str) -> None:
        super().__init__(f"SQS queue {name} does not exist (check the queue settings and stack)")
        self.name = name


def clamp_delay(delay_seconds: float) -> int:
    """A delay SQS accepts: whole seconds in 0..900."""
    return max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))


class SqsQueue:
    """One SQS queue addressed by name; the client and the queue URL are resolved once."""

    def __init__(self, name: str, settings: Settings, client: Any = None) -> None:
        self.name = name
        self._lazy = LazyClient("sqs", settings, client)
        self._url: str | None = None
        self._arn: str | None = None

    @property
    def client(self) -> Any:
        """The SQS client of this queue."""
        return self._lazy.get()

    @property
    def url(self) -> str:
        """The queue URL, looked up with GetQueueUrl on first use."""
        if self._url is None:
            try:
                self._url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
            except ClientError as exc:
                if _is_missing_queue(exc):
                    raise QueueNotFound(self.name) from exc
                raise
        return self._url

    @property
    def arn(self) -> str:
        """The queue ARN (for event source records), looked up once."""
        if self._arn is None:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["QueueArn"]
            )["Attributes"]
            self._arn = attributes["QueueArn"]
        return self._arn

    @property
    def fifo(self) -> bool:
        """A FIFO queue (its name ends in `.fifo`): sends are deduplicated, never delayed."""
        return self.name.endswith(".fifo")

    def send(self, body: dict[str, Any], delay_seconds: int = 0,
             dedup_id: str | None = None) -> str:
        """Send `body` as JSON, delayed by up to 900 s; returns the SQS message id.

        On a FIFO queue `dedup_id` is the MessageDeduplicationId (and the message group): a
        send repeated with it within SQS's five-minute window is accepted but not delivered
        again, which makes retrying a send whose answer was lost safe.
        """
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MessageBody": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        }
        if self.fifo:
            key = dedup_id or hashlib.sha256(kwargs["MessageBody"].encode()).hexdigest()
            kwargs.update(MessageGroupId=key[:128], MessageDeduplicationId=key[:128])
        else:
            kwargs["DelaySeconds"] = clamp_delay(delay_seconds)
        return self.client.send_message(**kwargs)["MessageId"]

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for `seconds` from now (0 hands it back at once)."""
        self.client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(MAX_VISIBILITY_SECONDS, int(seconds))),
        )

    def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> list[dict[str, Any]]:
        """Long-poll for up to `max_messages` messages, as ReceiveMessage returns them."""
        response = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE_MESSAGES, max_messages)),
            WaitTimeSeconds=max(0, min(MAX_WAIT_SECONDS, wait_seconds)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])

    def delete(self, receipt_handle: str) -> None:
        """Delete a received message (it was processed)."""
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)

    def change_visibility(self, receipt_handle: str, timeout_s: int) -> bool:
        """ChangeMessageVisibility (0: visible again now); False when the message is no
        longer in flight under this handle."""
        try:
            self.client.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt_handle,
                                                  VisibilityTimeout=max(0, int(timeout_s)))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _STALE_RECEIPT:
                return False
            raise
        return True


_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight"}


def _is_missing_queue(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    # The JSON protocol reports the type name; the older query protocol the legacy code.
    return error.get("Code") in {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    } or error.get("QueryErrorCode") == "QueueDoesNotExist"
