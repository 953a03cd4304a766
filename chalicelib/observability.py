"""The one Powertools Logger and Tracer of the service, the middleware that gives every handler
its Lambda context, and the metric helper.

Powertools' handler decorators break on Chalice handlers, so `observe` applies them as Chalice
middleware (app.py registers it), and `observed_authorizer` to the authorizer, which Chalice
runs without middleware.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from chalice.app import ChaliceAuthorizer, Request

from .domain.redaction import Redactor
from .settings import get_settings

# The one redactor of the process: the run repository and every log line go through it. It
# reads the environment's secrets until a container points it at the deployment's source.
redactor = Redactor(lambda: get_settings().env_secrets().values())


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, with every form of every secret redacted."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: A003 - logging's name
        return redactor.text(super().format(record))


def _redacting_record_factory(factory):
    """Records of every other logger (botocore, urllib3, ...) with their message redacted."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logger's own problem
            return record
        redacted = redactor.text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redactor.text(
                "".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return record

    make.redacting = True  # type: ignore[attr-defined]
    return make


if not getattr(logging.getLogRecordFactory(), "redacting", False):
    logging.setLogRecordFactory(_redacting_record_factory(logging.getLogRecordFactory()))

# Lambda context and service keys: on every JSON line on AWS, noise in a terminal.
_QUIET_KEYS = frozenset({"level", "location", "message", "timestamp", "service", "cold_start",
                         "function_name", "function_memory_size", "function_arn",
                         "function_request_id", "xray_trace_id", "sampling_rate", "action"})


class OneLineFormatter(RedactingFormatter):
    """Powertools' structured record as one readable line: `12:00:01 INFO  step_completed
    run_id=… step=total attempt=1` (the local stack, where POWERTOOLS_DEV is set)."""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        fields = " ".join(f"{key}={value}" for key, value in log.items()
                          if key not in _QUIET_KEYS and key not in ("exception", "stack_trace"))
        line = f"{time.strftime('%H:%M:%S')} {log.get('level', ''):<7} " \
               f"{log.get('message', '')}  {fields}".rstrip()
        return f"{line}\n{log['exception']}" if log.get("exception") else line


def _dev_mode() -> bool:
    """Powertools' own dev switch: also keeps metrics from printing (POWERTOOLS_DEV)."""
    return os.environ.get("POWERTOOLS_DEV", "").lower() in ("1", "true", "yes", "on")


# The service name is the stack's (POWERTOOLS_SERVICE_NAME), so two stages' logs, metrics and
# alarms stay apart. JSON on AWS; one line per record in a local terminal.
logger = Logger(service=get_settings().service,
                logger_formatter=OneLineFormatter() if _dev_mode() else RedactingFormatter())
# Off unless the stack's Tracing parameter is Enabled (POWERTOOLS_TRACE_DISABLED), and always
# outside Lambda. Responses and errors are not recorded: they may hold secrets.
tracer = Tracer(service=get_settings().service)

UNITS = {"count": MetricUnit.Count, "ms": MetricUnit.Milliseconds}


_batch = threading.local()


def _metrics(automation: str) -> Metrics:
    settings = get_settings()
    # A Metrics with a provider of its own: the default one shares one buffer and one dimension
    # set between instances and threads, while one invocation may serve several automations.
    metrics = Metrics(provider=AmazonCloudWatchEMFProvider(
        namespace=settings.metrics_namespace, service=settings.service))
    metrics.add_dimension(name="automation", value=automation)
    metrics.add_dimensions(service=settings.service)
    return metrics


@contextmanager
def metrics_batch() -> Iterator[None]:
    """Inside, metrics are gathered per automation and printed when the block ends: one EMF
    record per automation and invocation (values of a metric as a list), not one per value,
    which CloudWatch Logs bills by the byte. Outside, `emit` prints at once."""
    if getattr(_batch, "open", None) is not None:
        yield  # nested: the outer block prints
        return
    _batch.open = {}
    try:
        yield
    finally:
        gathered, _batch.open = _batch.open, None
        for metrics in gathered.values():
            metrics.flush_metrics()


def emit(name: str, value: float, automation: str, unit: str = "count") -> None:
    """Record the metric with two dimension sets: {service, automation} for drill-down and
    {service} alone, which the alarms watch (printed at once, or with its `metrics_batch`)."""
    gathered = getattr(_batch, "open", None)
    if gathered is None:
        metrics = _metrics(automation)
        metrics.add_metric(name=name, unit=UNITS[unit], value=value)
        metrics.flush_metrics()
        return
    if automation not in gathered:
        gathered[automation] = _metrics(automation)
    gathered[automation].add_metric(name=name, unit=UNITS[unit], value=value)


def _with_context(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """`handler(event, context)` with the Lambda context in every log line, and traced
    when tracing is on."""
    if not tracer.disabled:
        handler = tracer.capture_lambda_handler(handler, capture_response=False,
                                                capture_error=False)
    # Disabled, Powertools' wrapper still builds an X-Ray (dummy) subsegment per call, with
    # random ids from os.urandom: a tenth of the local stack's CPU per request.
    return logger.inject_lambda_context(handler, clear_state=True)


def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every handler: Lambda context (and a route's run id) in the logs."""
    if isinstance(event, Request):
        original, context = event.to_original_event(), event.lambda_context
    else:
        original, context = event.to_dict(), event.context
    if context is None:  # called directly, not as a Lambda function
        with metrics_batch():
            return get_response(event)

    def handle(_original: Any, _context: Any) -> Any:
        run_id = (event.uri_params or {}).get("id") if isinstance(event, Request) else None
        if run_id:
            logger.append_keys(run_id=run_id)
        with metrics_batch():
            return get_response(event)

    return _with_context(handle)(original, context)


class _ObservedAuthorizer(ChaliceAuthorizer):
    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        call = super().__call__
        return call(event, context) if context is None else _with_context(call)(event, context)


def observed_authorizer(authorizer: ChaliceAuthorizer) -> ChaliceAuthorizer:
    """`observe` for an authorizer (Chalice runs none of its middleware there)."""
    # The object itself must stay: routes and Chalice's packaging refer to it.
    authorizer.__class__ = _ObservedAuthorizer
    return authorizer
