"""Lambda entry points other than the API: step worker, DLQ consumer, ticker, counter stream.

Each parses its event, calls one service function and reports per-message failures.
"""
from __future__ import annotations

from chalice import Blueprint, Rate

from ..settings import get_settings

handlers = Blueprint(__name__)
_settings = get_settings()


@handlers.on_sqs_message(queue=_settings.step_queue, batch_size=1)
def execute_steps(event):
    """Run the steps named by step messages; failed records are reported for redelivery."""
    from .worker import handle_step_batch

    return handle_step_batch(event)


@handlers.on_sqs_message(queue=_settings.step_dlq, batch_size=10)
def consume_step_dlq(event):
    """Mark runs whose step messages crashed the executor repeatedly as failed."""
    from .worker import handle_dead_letters

    return handle_dead_letters(event)


@handlers.schedule(Rate(1, unit=Rate.MINUTES))
def tick(event):
    """Every minute: fire due cron automations, then sweep stuck and waiting runs."""
    from .scheduler import handle_tick

    return handle_tick(event)


@handlers.lambda_function(name="count_runs")
def count_runs(event, context):
    """Keep the per-(automation, trigger type) status counters from the table's stream."""
    from ..adapters.counters.stream_handler import process_stream_event

    return process_stream_event(event)
