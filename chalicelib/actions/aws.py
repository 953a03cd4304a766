"""aws/sqs-send, aws/sns-publish, aws/eventbridge-put, aws/dynamodb-put: side effects via boto3."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator

from ..domain.retry import ActionError
from .base import ActionContext, Output, Props
from .registry import ActionSpec

_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})


@contextmanager
def aws_errors(operation: str) -> Iterator[None]:
    """Translate botocore errors: throttling, 5xx, timeouts and network retry; the rest do not."""
    from botocore.exceptions import (  # noqa: PLC0415 - boto3 is imported only when used
        ClientError, ConnectionError, ConnectTimeoutError, HTTPClientError, ReadTimeoutError,
    )
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker  # noqa: PLC0415

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        throttled = ThrottledRetryableChecker().is_retryable(
            RetryContext(attempt_number=1, parsed_response=exc.response)
        )
        raise ActionError(f"{operation}: {exc}", code,
                          retryable=throttled or status in _TRANSIENT_STATUS) from exc
    except (ConnectTimeoutError, ReadTimeoutError) as exc:
        raise ActionError(f"{operation} timed out", "Timeout", retryable=True,
                          timed_out=True) from exc
    except (ConnectionError, HTTPClientError) as exc:
        raise ActionError(f"{operation}: {exc}", "NetworkError", retryable=True) from exc


def as_text(value: Any) -> str:
    """Strings as they are; any other JSON value serialised."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


class SqsSendProps(Props):
    queue_url: str | None = None
    queue_name: str | None = None
    message_body: Any
    delay_seconds: int = Field(default=0, ge=0, le=900)
    message_group_id: str | None = None  # FIFO queues; defaults to the run id

    @model_validator(mode="after")
    def _one_queue(self) -> "SqsSendProps":
        if (self.queue_url is None) == (self.queue_name is None):
            raise ValueError("give exactly one of queueUrl or queueName")
        return self


def sqs_send(props: SqsSendProps, ctx: ActionContext) -> dict[str, Any]:
    """SendMessage; FIFO queues deduplicate on the step's idempotency key."""
    sqs = ctx.client("sqs")
    with aws_errors("sqs SendMessage"):
        url = props.queue_url or sqs.get_queue_url(QueueName=props.queue_name)["QueueUrl"]
        kwargs: dict[str, Any] = {
            "QueueUrl": url,
            "MessageBody": as_text(props.message_body),
            "MessageAttributes": {
                "IdempotencyKey": {"DataType": "String", "StringValue": ctx.idempotency_key}
            },
        }
        if url.endswith(".fifo"):
            kwargs["MessageGroupId"] = props.message_group_id or ctx.run_id
            kwargs["MessageDeduplicationId"] = hashlib.sha256(
                ctx.idempotency_key.encode()).hexdigest()
        elif props.delay_seconds:
            kwargs["DelaySeconds"] = props.delay_seconds
        answer = sqs.send_message(**kwargs)
    return {"messageId": answer["MessageId"], "sequenceNumber": answer.get("SequenceNumber")}


class SnsPublishProps(Props):
    topic_arn: str
    message: Any
    subject: str | None = Field(default=None, max_length=100)


def sns_publish(props: SnsPublishProps, ctx: ActionContext) -> dict[str, Any]:
    """Publish to a topic, with the idempotency key as a message attribute."""
    kwargs: dict[str, Any] = {
        "TopicArn": props.topic_arn,
        "Message": as_text(props.message),
        "MessageAttributes": {
            "IdempotencyKey": {"DataType": "String", "StringValue": ctx.idempotency_key}
        },
    }
    if props.subject:
        kwargs["Subject"] = props.subject
    with aws_errors("sns Publish"):
        answer = ctx.client("sns").publish(**kwargs)
    return {"messageId": answer["MessageId"]}


class EventEntry(Props):
    source: str
    detail_type: str
    detail: Any = Field(default_factory=dict)
    event_bus_name: str | None = None


class EventBridgePutProps(Props):
    entries: list[EventEntry] | None = Field(default=None, min_length=1, max_length=10)
    source: str | None = None
    detail_type: str | None = None
    detail: Any = None
    event_bus_name: str | None = None

    @model_validator(mode="after")
    def _entries_or_one(self) -> "EventBridgePutProps":
        if self.entries is None and (self.source is None or self.detail_type is None):
            raise ValueError("give entries, or source and detailType")
        if self.entries is not None and (self.source or self.detail_type):
            raise ValueError("give entries or source/detailType, not both")
        return self

    def all_entries(self) -> list[EventEntry]:
        if self.entries is not None:
            return self.entries
        return [EventEntry(source=self.source, detail_type=self.detail_type,
                           detail=self.detail or {}, event_bus_name=self.event_bus_name)]


def eventbridge_put(props: EventBridgePutProps, ctx: ActionContext) -> dict[str, Any]:
    """PutEvents; any failed entry fails the step (retryable when every failure is transient)."""
    entries = []
    for entry in props.all_entries():
        item = {"Source": entry.source, "DetailType": entry.detail_type,
                "Detail": as_text(entry.detail)}
        if entry.event_bus_name:
            item["EventBusName"] = entry.event_bus_name
        entries.append(item)
    with aws_errors("events PutEvents"):
        answer = ctx.client("events").put_events(Entries=entries)
    results = answer.get("Entries", [])
    failed = [r for r in results if r.get("ErrorCode")]
    if failed:
        transient = all(r["ErrorCode"] in ("ThrottlingException", "InternalFailure")
                        for r in failed)
        raise ActionError(
            f"events PutEvents: {len(failed)} of {len(entries)} entries failed",
            failed[0]["ErrorCode"], retryable=transient, detail={"entries": results},
        )
    return {"eventIds": [r.get("EventId") for r in results]}


class DynamoPutProps(Props):
    table_name: str
    item: dict[str, Any]


def dynamodb_put(props: DynamoPutProps, ctx: ActionContext) -> dict[str, Any]:
    """PutItem of a plain JSON item (numbers become DynamoDB numbers)."""
    from boto3.dynamodb.types import TypeSerializer  # noqa: PLC0415

    # DynamoDB numbers must be Decimal; a JSON round trip converts floats exactly as written.
    plain = json.loads(json.dumps(props.item), parse_float=Decimal)
    serializer = TypeSerializer()
    item = {key: serializer.serialize(value) for key, value in plain.items()}
    with aws_errors("dynamodb PutItem"):
        ctx.client("dynamodb").put_item(TableName=props.table_name, Item=item)
    return {"tableName": props.table_name}


class SqsSendOutput(Output):
    """SQS's answer."""

    message_id: str
    sequence_number: str | None = Field(description="FIFO queues only")


class SnsPublishOutput(Output):
    """SNS's answer."""

    message_id: str


class EventBridgePutOutput(Output):
    """EventBridge's id of each entry, in order."""

    event_ids: list[str | None]


class DynamoPutOutput(Output):
    """The table written to."""

    table_name: str


ACTIONS = [
    ActionSpec("aws", "sqs-send", SqsSendProps, sqs_send, SqsSendOutput),
    ActionSpec("aws", "sns-publish", SnsPublishProps, sns_publish, SnsPublishOutput),
    ActionSpec("aws", "eventbridge-put", EventBridgePutProps, eventbridge_put,
               EventBridgePutOutput),
    ActionSpec("aws", "dynamodb-put", DynamoPutProps, dynamodb_put, DynamoPutOutput),
]
