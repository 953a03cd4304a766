"""The packaged template's table, queues, bucket, event sources and alarms."""
from __future__ import annotations

import json

import pytest

from .helpers import get_att, of_type, props, ref

from chalicelib.adapters.dynamo_models import INDEXES, RunItemBase


def test_every_index_of_the_model_is_in_the_template_with_its_projection(resources):
    """The PynamoDB model (what the adapter queries) and the template (what is deployed, and
    what moto creates) declare the same indexes, keys and projected attributes."""
    table = props(resources, "RunsTable")
    deployed = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    modelled = RunItemBase._indexes
    assert set(modelled) == set(deployed)
    for name, index in modelled.items():
        projection = deployed[name]["Projection"]
        assert sorted(projection["NonKeyAttributes"]) == sorted(
            index.Meta.projection.non_key_attributes), name
    assert set(deployed) == set(INDEXES)


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
    ("ExecuteSteps", "ExecuteStepsSqsEventSource", "StepQueue"),
    ("ConsumeStepDlq", "ConsumeStepDlqSqsEventSource", "StepDeadLetterQueue"),
])
def test_sqs_event_sources_read_the_stacks_queues_and_report_batch_item_failures(
        resources, function, event, queue):
    source = props(resources, function)["Events"][event]
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::Sub": f"${{{queue}.Arn}}"}
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


def test_only_run_item_records_reach_count_runs(resources):
    """Counters only change with run items; other records must not fill the batches."""
    from chalicelib.adapters.counters import deltas  # noqa: PLC0415

    patterns = [json.loads(f["Pattern"])
                for f in props(resources, "CountRunsStreamMapping")["FilterCriteria"]["Filters"]]
    assert patterns == [{"dynamodb": {"Keys": {"sk": {"S": ["RUN"]}}}}]

    def record(sk: str) -> dict:
        image = {"automationName": {"S": "a"}, "triggerType": {"S": "manual"},
                 "status": {"S": "pending"}}
        return {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "r"}, "sk": {"S": sk}},
                                                     "NewImage": image}}

    # What the filter drops never changes a counter.
    assert deltas([record("STEP#0000"), record("MARK"), record("COUNTER")]) == {}
    assert deltas([record("RUN")])


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


GLOBAL_VARIABLES = {
    "RUNS_STAGE": ref("Stage"),
    "RUNS_TABLE": ref("RunsTable"),
    "STEP_QUEUE": get_att("StepQueue", "QueueName"),
    "STEP_DLQ": get_att("StepDeadLetterQueue", "QueueName"),
    "EXHAUSTED_QUEUE": get_att("ExhaustedRunsQueue", "QueueName"),
    "PAYLOAD_BUCKET": ref("PayloadBucket"),
    "RUN_RETENTION_DAYS": ref("RunRetentionDays"),
    "POWERTOOLS_SERVICE_NAME": ref("AWS::StackName"),
    "POWERTOOLS_METRICS_NAMESPACE": "AutomationRuns",
    "POWERTOOLS_TRACE_DISABLED": {"Fn::If": ["TracingEnabled", "false", "true"]},
    "POWERTOOLS_LOG_LEVEL": ref("LogLevel"),
    "CURSOR_KEY": ref("AWS::StackId"),  # signs list cursors: per stack, unknown to callers
}


def test_every_function_gets_the_stacks_resource_names_from_the_template(sam, resources,
                                                                         chalice_config):
    assert sam["Globals"]["Function"]["Environment"]["Variables"] == GLOBAL_VARIABLES
    # Chalice's config cannot reference the stack's resources, and a function-level value
    # would shadow the global one in SAM's merge.
    assert "environment_variables" not in chalice_config
    for stage in chalice_config["stages"].values():
        assert "environment_variables" not in stage
    for logical_id, function in of_type(resources, "AWS::Serverless::Function").items():
        own = function.get("Environment", {}).get("Variables", {})
        assert not set(own) & set(GLOBAL_VARIABLES), logical_id


# Properties that name a resource physically: a fixed value allows one stack per account.
NAME_PROPERTIES = {"TableName", "QueueName", "BucketName", "TopicName", "RoleName",
                   "FunctionName", "LogGroupName", "AlarmName", "UsagePlanName", "Name",
                   "StageName", "RuleName", "ParameterName"}
NAMING_ALLOWED = {
    ("RestAPI", "StageName"),  # the API's own stage (v1), inside the stack's API
}
SKIPPED = ("Events", "Policies", "Dimensions")  # "Name" there is a key, not a resource name


def _names(node, path=()):
    """(property path, value) of every name-like property below `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in NAME_PROPERTIES:
                yield path + (key,), value
            yield from _names(value, path + (key,))
    elif isinstance(node, list):
        for item in node:
            yield from _names(item, path)


def test_no_resource_has_a_fixed_physical_name(resources):
    for logical_id, resource in resources.items():
        for path, value in _names(resource.get("Properties", {})):
            if (logical_id, path[-1]) in NAMING_ALLOWED or path[0] in SKIPPED:
                continue
            if path[-1] == "FunctionName" and value in (ref(f) for f in resources):
                continue  # a reference to the stack's own function
            assert isinstance(value, dict), f"{logical_id}.{'.'.join(path)} = {value!r}"
            if "Fn::Sub" in value:
                assert "${AWS::StackName}" in value["Fn::Sub"], (logical_id, path, value)


def test_email_subscription_exists_only_with_an_address(sam, resources):
    subscription = resources["AlertEmailSubscription"]
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"]["TopicArn"] == ref("AlertTopic")
    assert subscription["Properties"]["Endpoint"] == ref("AlertEmail")
    assert sam["Conditions"]["HasAlertEmail"] == {
        "Fn::Not": [{"Fn::Equals": [ref("AlertEmail"), ""]}]
    }


def test_run_alarms_watch_the_service_level_metrics_of_their_own_stack(resources):
    service = GLOBAL_VARIABLES["POWERTOOLS_SERVICE_NAME"]
    namespace = GLOBAL_VARIABLES["POWERTOOLS_METRICS_NAMESPACE"]
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
    ("AutomationRuns", "RunsExhausted", ref("AWS::StackName")),
    ("AutomationRuns", "RunsFailed", ref("AWS::StackName")),
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


def test_gateway_answers_use_the_error_envelope_from_the_first_deployment(resources):
    # On the API itself (not separate resources), so SAM puts them in the definition that
    # the stage's first deployment deploys.
    assert not of_type(resources, "AWS::ApiGateway::GatewayResponse")
    responses = props(resources, "RestAPI")["GatewayResponses"]
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    body = responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"]
    assert '"code": "UNAUTHORIZED"' in body and '"success": false' in body
    assert responses["ACCESS_DENIED"]["StatusCode"] == "403"
    # A path no route matches: API Gateway's 403 "Missing Authentication Token" becomes a 404.
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == "404"
    assert '"code": "NOT_FOUND"' in missing["ResponseTemplates"]["application/json"]


def test_the_api_stage_is_throttled_and_has_a_usage_plan_both_set_by_parameters(sam, resources):
    (settings,) = props(resources, "RestAPI")["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] == ref("ApiRateLimit")
    assert settings["ThrottlingBurstLimit"] == ref("ApiBurstLimit")
    plan = props(resources, "ApiUsagePlan")
    assert plan["ApiStages"] == [{"ApiId": ref("RestAPI"), "Stage": ref("RestAPI.Stage")}]
    assert plan["Throttle"] == {"RateLimit": ref("UsagePlanRateLimit"),
                                "BurstLimit": ref("UsagePlanBurstLimit")}
    assert plan["Quota"] == {"Limit": ref("UsagePlanDailyQuota"), "Period": "DAY"}
    for name in ("ApiRateLimit", "ApiBurstLimit", "UsagePlanRateLimit", "UsagePlanBurstLimit",
                 "UsagePlanDailyQuota"):
        assert sam["Parameters"][name]["Type"] == "Number"
        assert sam["Parameters"][name]["MinValue"] == 1


def test_token_routes_are_served_by_the_token_admin_function(resources):
    paths = props(resources, "RestAPI")["DefinitionBody"]["paths"]
    for path, methods in paths.items():
        target = "TokenAdmin" if path.startswith("/api/tokens") else "APIHandler"
        for method, operation in methods.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            assert f"${{{target}.Arn}}" in uri, (method, path)
    admin, api = props(resources, "TokenAdmin"), props(resources, "APIHandler")
    for same in ("Handler", "CodeUri", "Runtime", "MemorySize", "Timeout", "Tracing"):
        assert admin[same] == api[same], same
    assert props(resources, "TokenAdminInvokePermission")["FunctionName"] == ref("TokenAdmin")
