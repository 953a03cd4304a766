"""Every price and model constant the cost bench uses, in one place.

Prices: AWS public on-demand list prices, region us-east-1, x86, no free tier, as published
on the AWS pricing pages listed below as of 2025-06 (this machine has no network: re-check
them before quoting the figures elsewhere; change a number here and `make bench` follows).
"""
from __future__ import annotations

PRICES_DATE = "2025-06 (AWS pricing pages, us-east-1)"

# https://aws.amazon.com/dynamodb/pricing/on-demand/ (on-demand, after the 2024-11-01 cut)
DYNAMODB_USD_PER_WRITE_UNIT = 0.625 / 1_000_000
DYNAMODB_USD_PER_READ_UNIT = 0.125 / 1_000_000
# Same page: "GetRecords API calls invoked by AWS Lambda as part of DynamoDB triggers are free".
DYNAMODB_STREAM_READS_BY_LAMBDA_USD = 0.0

# https://aws.amazon.com/sqs/pricing/ (standard queue; each 64 KB chunk of a request is one)
SQS_USD_PER_REQUEST = 0.40 / 1_000_000

# https://aws.amazon.com/lambda/pricing/ (x86, first duration tier)
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_USD_PER_GB_SECOND = 0.0000166667

# https://aws.amazon.com/cloudwatch/pricing/ (logs ingestion, standard class; custom metrics,
# first 10,000 per month). EMF metric records are log lines: they are billed as ingestion.
CLOUDWATCH_LOGS_USD_PER_GB = 0.50
CLOUDWATCH_USD_PER_METRIC_MONTH = 0.30

# https://aws.amazon.com/api-gateway/pricing/ (REST API, first 333 million): shown apart,
# since a cron, an automation call or a failure handler starts a run without a request.
API_GATEWAY_USD_PER_REQUEST = 3.50 / 1_000_000

# https://aws.amazon.com/step-functions/pricing/ (Standard: $0.025 per 1,000 state transitions)
SFN_STANDARD_USD_PER_MILLION_STEPS = 25.0

# --- Model constants (not prices) ------------------------------------------------------------
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html: at 1,769 MB a
# function has the equivalent of one vCPU; below that, CPU time stretches in proportion.
LAMBDA_MB_PER_VCPU = 1769
# Wall time a function waits for one AWS request (same region, warm connection): DynamoDB
# answers in single-digit milliseconds, SQS in about ten. Estimates, billed as duration.
AWS_REQUEST_WAIT_MS = {"dynamodb": 5.0, "sqs": 10.0, "s3": 20.0}
AWS_REQUEST_WAIT_MS_DEFAULT = 10.0
# Lambda writes START, END and REPORT lines per invocation into the function's log group.
LAMBDA_PLATFORM_LOG_BYTES_PER_INVOCATION = 350
# Lambda's SQS event source: idle pollers long-poll (20 s) about five queues' worth of
# ReceiveMessage a minute each; billed as SQS requests whether or not messages arrive.
SQS_IDLE_POLLERS = 5
SQS_IDLE_RECEIVES_PER_POLLER_PER_MINUTE = 3
SQS_MAX_MESSAGES_PER_RECEIVE = 10
SECONDS_PER_MONTH = 30 * 24 * 3600
# DynamoDB sizes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
INDEX_ENTRY_OVERHEAD_BYTES = 100
