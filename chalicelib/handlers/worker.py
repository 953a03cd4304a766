"""SQS consumers: the step worker and the step DLQ consumer. Idempotent per message; one
structured log line per outcome; failed records reported back for redelivery.

Each consumer is a per-record function (raises to have its message redelivered) and the batch
plumbing around it: Powertools' BatchProcessor, which reports the failed records.
"""
from __future__ import annotations

from typing import Any, Callable

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..bootstrap import container
from ..observability import logger
from ..services import lifecycle
from ..services.delivery import NO_DELIVERY, Delivery


def _remaining(event) -> Callable[[], int]:
    context = getattr(event, "context", None)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return context.get_remaining_time_in_millis
    return lambda: 900_000


def _process_batch(event, record_handler: Callable[[SQSRecord], None]) -> dict[str, Any]:
    """Run `record_handler` on each record; `batchItemFailures` names those that raised."""
    # Not raising when every record failed: the batch is answered (and redelivered) the same
    # way, without counting as a Lambda error (the executor's error alarm means a crash).
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event.to_dict(), record_handler=record_handler,
                                    processor=processor, context=event.context)


def process_step_record(deps, record: SQSRecord, remaining: Callable[[], int]) -> None:
    """Run the steps one step message names; raises to have the message redelivered."""
    from ..services.executor import process_step_message  # noqa: PLC0415

    body = record.json_body
    delivery = _delivery(deps, record)
    with logger.append_context_keys(run_id=body.get("runId"), batch_id=body.get("batchId")):
        try:
            delivery.start()
            process_step_message(deps, body, remaining, delivery)
        except Exception:  # redelivered by SQS after a short backoff, then dead-lettered
            logger.exception("step message failed")
            delivery.failed()
            raise
        logger.info("step message done")


def _delivery(deps, record: SQSRecord):
    """The record's delivery: its visibility follows the executor's leases (delivery.py).
    A queue that cannot change a message's visibility keeps its own redelivery timing."""
    if not record.receipt_handle or not hasattr(deps.step_queue, "change_visibility"):
        return NO_DELIVERY
    count = int(record.attributes.get("ApproximateReceiveCount") or 1)
    return Delivery(deps.step_queue, record.receipt_handle, count, deps.clock)


def handle_step_batch(event) -> dict[str, Any]:
    """Process each step message; report the ids of those that raised."""
    deps = container()
    remaining = _remaining(event)
    return _process_batch(event, lambda record: process_step_record(deps, record, remaining))


def process_dead_letter(deps, record: SQSRecord) -> None:
    """Fail the run of one dead-lettered step message; raises to have it redelivered."""
    body = record.json_body
    from ..services import bulk  # noqa: PLC0415

    kind = body.get("kind")
    if kind == "failure":
        return  # handler dispatch is best effort once its message keeps crashing
    with logger.append_context_keys(run_id=body.get("runId"), batch_id=body.get("batchId")):
        try:
            if kind == bulk.MESSAGE_KIND:
                bulk.give_up(deps, body, "the worker crashed repeatedly on this batch")
            else:
                lifecycle.fail_crashed_run(deps, body["runId"])
        except Exception:
            logger.exception("dead letter not handled")
            raise


def handle_dead_letters(event) -> dict[str, Any]:
    """A step message that crashed the executor repeatedly: fail its run and say why."""
    deps = container()
    return _process_batch(event, lambda record: process_dead_letter(deps, record))
