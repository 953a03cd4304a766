"""The one Powertools Logger, Metrics and Tracer of the service, and the metric helper."""
from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = "automation-runs"
NAMESPACE = "AutomationRuns"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

UNITS = {"count": MetricUnit.Count, "ms": MetricUnit.Milliseconds}


def emit(name: str, value: float, automation: str, unit: str = "count") -> None:
    """Print one EMF metric twice: per automation, and service-wide (what the alarms watch)."""
    for dimensions in ({"service": SERVICE, "automation": automation}, {"service": SERVICE}):
        with single_metric(
            name=name, unit=UNITS[unit], value=value, namespace=NAMESPACE,
            default_dimensions=dimensions,
        ):
            pass
