"""The packaged template's table, queues, bucket, event sources and alarms."""
from __future__ import annotations

import pytest

from .helpers import get_att, of_type, props, ref

INDEXES = {"byAll": "allPk", "byAutomation": "autoPk", "byStatus": "statusPk",
           "byAutomationStatus": "autoStatusPk", "byReplayOf": "replayPk"}


def test_runs_table_keys_indexes_stream_ttl_and_recovery(resources):
    table = props(resources, "RunsTable")
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    indexes = {index["IndexName"]: index["KeySchema"] for index in table["GlobalSecondaryIndexes"]}
    assert indexes == {
        name: [{"AttributeName": hash_key, "KeyType": "HASH"},
               {"AttributeName": "listSk", "KeyType": "RANGE"}]
        for name, hash_key in INDEXES.items()
    }
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resources["RunsTable"]["DeletionPolicy"] == "Retain"


def test_step_queue_redrives_to_the_dlq_and_outlasts_the_executor(resources):
    queue = props(resources, "StepQueue")
    executor_timeout = props(resources, "ExecuteSteps")["Timeout"]
    assert executor_timeout == 900
    assert queue["VisibilityTimeout"] >= 6 * executor_timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == get_att("StepDeadLetterQueue", "Arn")
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10


def test_dlq_and_exhausted_queue_keep_messages_for_two_weeks(resources):
    dlq = props(resources, "StepDeadLetterQueue")
    assert dlq["MessageRetentionPeriod"] == 1209600
    assert dlq["VisibilityTimeout"] >= props(resources, "ConsumeStepDlq")["Timeout"]
    assert props(resources, "ExhaustedRunsQueue")["MessageRetentionPeriod"] == 1209600


@pytest.mark.parametrize("function, event, queue", [
    ("ExecuteSteps", "ExecuteStepsSqsEventSource", "automation-runs-steps"),
    ("ConsumeStepDlq", "ConsumeStepDlqSqsEventSource", "automation-runs-steps-dlq"),
])
def test_sqs_event_sources_report_batch_item_failures(resources, function, event, queue):
    source = props(resources, function)["Events"][event]
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"]["Fn::Sub"].endswith(f":{queue}")
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_executor_takes_one_step_message_per_invocation(resources):
    source = props(resources, "ExecuteSteps")["Events"]["ExecuteStepsSqsEventSource"]
    assert source["Properties"]["BatchSize"] == 1


def test_table_stream_feeds_count_runs(resources):
    mapping = props(resources, "CountRunsStreamMapping")
    assert resources["CountRunsStreamMapping"]["Type"] == "AWS::Lambda::EventSourceMapping"
    assert mapping["EventSourceArn"] == get_att("RunsTable", "StreamArn")
    assert mapping["FunctionName"] == ref("CountRuns")
    assert props(resources, "CountRuns")["Handler"].endswith(".count_runs")
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BisectBatchOnFunctionError"] is False
    assert 1 <= mapping["MaximumBatchingWindowInSeconds"] <= 10
    assert 1 <= mapping["BatchSize"] <= 1000


def test_payload_bucket_is_encrypted_private_and_expires_with_runs(resources):
    bucket = props(resources, "PayloadBucket")
    rules = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == ref("RunRetentionDays")
    policy = props(resources, "PayloadBucketPolicy")["PolicyDocument"]["Statement"]
    assert policy[0]["Effect"] == "Deny"
    assert policy[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_function_gets_the_bucket_name_and_retention(sam, resources):
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PAYLOAD_BUCKET"] == ref("PayloadBucket")
    assert variables["RUN_RETENTION_DAYS"] == ref("RunRetentionDays")
    for logical_id, function in of_type(resources, "AWS::Serverless::Function").items():
        own = function.get("Environment", {}).get("Variables", {})
        # A function-level value would shadow the global one in SAM's merge.
        assert "PAYLOAD_BUCKET" not in own, logical_id
        assert "RUN_RETENTION_DAYS" not in own, logical_id


def test_email_subscription_exists_only_with_an_address(sam, resources):
    subscription = resources["AlertEmailSubscription"]
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"]["TopicArn"] == ref("AlertTopic")
    assert subscription["Properties"]["Endpoint"] == ref("AlertEmail")
    assert sam["Conditions"]["HasAlertEmail"] == {
        "Fn::Not": [{"Fn::Equals": [ref("AlertEmail"), ""]}]
    }


def test_run_alarms_watch_the_service_level_metrics(resources, chalice_config):
    service = chalice_config["environment_variables"]["POWERTOOLS_SERVICE_NAME"]
    namespace = chalice_config["environment_variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    for metric in ("RunsExhausted", "RunsFailed"):
        (alarm,) = [a for a in alarms.values() if a["MetricName"] == metric]
        assert alarm["Namespace"] == namespace
        assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]
        assert alarm["Statistic"] == "Sum"


@pytest.mark.parametrize("namespace, metric, dimension", [
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", get_att("StepDeadLetterQueue", "QueueName")),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", get_att("ExhaustedRunsQueue", "QueueName")),
    ("AWS/Lambda", "Errors", ref("ExecuteSteps")),
    ("AWS/Lambda", "Throttles", ref("ExecuteSteps")),
    ("AutomationRuns", "RunsExhausted", "automation-runs"),
    ("AutomationRuns", "RunsFailed", "automation-runs"),
])
def test_alarm_fires_above_zero_to_the_alert_topic(resources, namespace, metric, dimension):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    matching = [a for a in alarms.values()
                if a["Namespace"] == namespace and a["MetricName"] == metric
                and [d["Value"] for d in a["Dimensions"]] == [dimension]]
    assert len(matching) == 1, f"no single alarm on {namespace} {metric} {dimension}"
    (alarm,) = matching
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [ref("AlertTopic")]


def test_gateway_answers_use_the_error_envelope(resources):
    responses = {r["Properties"]["ResponseType"]: r["Properties"]
                 for r in resources.values()
                 if r["Type"] == "AWS::ApiGateway::GatewayResponse"}
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    body = responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"]
    assert '"code": "UNAUTHORIZED"' in body and '"success": false' in body
    assert responses["ACCESS_DENIED"]["StatusCode"] == "403"
