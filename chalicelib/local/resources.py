"""Create the tables, queues and bucket of infra/resources.yaml on an AWS-compatible endpoint.

The deployment template is the single source of truth; this translates its DynamoDB, SQS and S3
resources into the equivalent boto3 calls for the local stack and the moto-backed tests.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..settings import Settings

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "resources.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags as their long-form dicts."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The infra template as plain data (short-form tags expanded)."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Logical id → Properties of every resource of CloudFormation type `kind`."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == kind
    }


def table_kwargs(props: dict[str, Any], name: str) -> dict[str, Any]:
    """boto3 `create_table` arguments for an AWS::DynamoDB::Table's Properties."""
    kwargs: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **stream}
    return kwargs


def settings_names(settings: Settings) -> dict[str, str]:
    """Logical id → the physical name the settings use (CloudFormation names them on AWS)."""
    return {"RunsTable": settings.runs_table, "StepQueue": settings.step_queue,
            "StepDeadLetterQueue": settings.step_dlq,
            "ExhaustedRunsQueue": settings.exhausted_queue,
            "PayloadBucket": settings.payload_bucket}


def create_resources(session, names: dict[str, str] | None = None) -> dict[str, str]:
    """Create every table, queue and bucket of the template; returns logical id → name/URL.

    `names` maps logical ids to the physical names to use (e.g. per-test names); the others
    take the names of the settings.
    """
    names = {**settings_names(Settings.from_env()), **(names or {})}
    template = load_template()
    created: dict[str, str] = {}
    dynamodb = session.client("dynamodb")
    for logical_id, props in resources_of_type(template, "AWS::DynamoDB::Table").items():
        kwargs = table_kwargs(props, names[logical_id])
        dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=kwargs["TableName"], TimeToLiveSpecification=ttl
            )
        created[logical_id] = kwargs["TableName"]
    created.update(_create_queues(session.client("sqs"), template, names))
    created.update(_create_buckets(session.client("s3"), template, names))
    return created


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """`value` with every `Ref` to a template parameter replaced by the parameter's default."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in template.get("Parameters", {}):
            return template["Parameters"][value["Ref"]].get("Default")
        return {key: resolve(item, template) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, template) for item in value]
    return value


def _create_buckets(s3, template: dict[str, Any], names: dict[str, str]) -> dict[str, str]:
    created: dict[str, str] = {}
    for logical_id, props in resources_of_type(template, "AWS::S3::Bucket").items():
        props = resolve(props, template)
        bucket = names[logical_id]
        s3.create_bucket(Bucket=bucket)
        if "BucketEncryption" in props:
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        _encryption_rule(rule)
                        for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                    ]
                },
            )
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"],
            )
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        created[logical_id] = bucket
    return created


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation encryption rule in the S3 API's shape."""
    converted = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
    if "BucketKeyEnabled" in rule:
        converted["BucketKeyEnabled"] = rule["BucketKeyEnabled"]
    return converted


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    converted: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"],
                                 "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return converted


def _create_queues(sqs, template: dict[str, Any], names: dict[str, str]) -> dict[str, str]:
    queues = resources_of_type(template, "AWS::SQS::Queue")
    created: dict[str, str] = {}
    arns: dict[str, str] = {}
    # Dead-letter queues first, so redrive policies can name their ARNs.
    ordered = sorted(queues, key=lambda logical_id: "RedrivePolicy" in queues[logical_id])
    for logical_id in ordered:
        props = queues[logical_id]
        name = names[logical_id]
        attributes = {
            key: str(props[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")
            if key in props
        }
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        redrive = props.get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arns[target], "maxReceiveCount": redrive["maxReceiveCount"]}
            )
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        created[logical_id] = name
    return created
