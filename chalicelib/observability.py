"""The one Powertools Logger, Metrics and Tracer of the service."""
from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "automation-runs"
NAMESPACE = "AutomationRuns"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
