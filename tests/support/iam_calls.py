"""Record every AWS call the code makes, attributed to the Lambda function making it, and turn
each into the IAM requests AWS authorizes (action, resource ARN, condition context)."""
from __future__ import annotations

import contextvars
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.client import BaseClient
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"

_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)


@dataclass(frozen=True)
class Call:
    """One AWS API call made while a function was being driven."""

    function: str
    service: str
    operation: str
    params: dict[str, Any]
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Request:
    """What IAM authorizes: one action on one resource, with condition keys."""

    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)


class CallRecorder:
    """Patches botocore (boto3 and PynamoDB both call through it) while entered. Calls made
    outside `as_function` (test set-up, the harness's own receives) are not recorded; calls
    made inside a frame of `reassign` code are recorded for that function instead."""

    def __init__(self, reassign: dict[Any, str] | None = None) -> None:
        self.calls: list[Call] = []
        self._reassign = reassign or {}  # code object → function (e.g. the authorizer's)
        self._patch = mock.patch.object(BaseClient, "_make_api_call", self._wrap())

    def _wrap(self):
        original = BaseClient._make_api_call
        recorder = self

        def make_api_call(client, operation, params):
            function = recorder._attributed()
            try:
                result = original(client, operation, params)
            except ClientError as exc:
                if function:
                    recorder.calls.append(Call(function, client.meta.service_model.service_name,
                                               operation, params, exc.response["Error"]["Code"]))
                raise
            if function:
                recorder.calls.append(Call(function, client.meta.service_model.service_name,
                                           operation, params, result=result))
            return result

        return make_api_call

    def _attributed(self) -> str | None:
        function = _function.get()
        if function is None:
            return None
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code in self._reassign:
                return self._reassign[frame.f_code]
            frame = frame.f_back
        return function

    def __enter__(self) -> "CallRecorder":
        self._patch.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._patch.stop()

    @staticmethod
    @contextmanager
    def as_function(logical_id: str) -> Iterator[None]:
        """Attribute the calls made inside to the function `logical_id`."""
        token = _function.set(logical_id)
        try:
            yield
        finally:
            _function.reset(token)

    def of(self, function: str) -> list[Call]:
        return [call for call in self.calls if call.function == function]


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def _leading_key(key: dict[str, Any] | None, attribute: str = "pk") -> list[str]:
    value = (key or {}).get(attribute, {})
    return [value["S"]] if "S" in value else []


def _query_leading_key(params: dict[str, Any], hash_keys: dict[str | None, str]) -> list[str]:
    """The partition key value of a Query (`#n = :v` in its key condition)."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    wanted = hash_keys[params.get("IndexName")]
    for name, value in re.findall(r"(#\w+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
        if names.get(name) == wanted:
            return [values[value]["S"]]
    raise AssertionError(f"no partition key in {params['KeyConditionExpression']}")


def _item_context(body: dict[str, Any]) -> dict[str, list[str]]:
    """Condition keys of a single-item request: its partition key and the attributes named."""
    key = body.get("Key") or body.get("Item")
    if not key:
        return {}
    named = set(body.get("Item", {})) | set(body.get("Key", {}))
    named |= set(body.get("ExpressionAttributeNames", {}).values())
    return {"dynamodb:LeadingKeys": _leading_key(key), "dynamodb:Attributes": sorted(named)}


def _dynamodb(call: Call, hash_keys: dict[str | None, str]) -> list[Request]:
    params, op = call.params, call.operation
    if op in {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable"}:
        return [Request(f"dynamodb:{op}", table_arn(params["TableName"]), _item_context(params))]
    if op == "Query":
        resource = table_arn(params["TableName"])
        if params.get("IndexName"):
            resource += f"/index/{params['IndexName']}"
        return [Request("dynamodb:Query", resource,
                        {"dynamodb:LeadingKeys": _query_leading_key(params, hash_keys)})]
    if op in {"BatchGetItem", "BatchWriteItem"}:
        requests = []
        for table, items in params["RequestItems"].items():
            keys = items["Keys"] if op == "BatchGetItem" else [
                entry.get("PutRequest", {}).get("Item") or entry["DeleteRequest"]["Key"]
                for entry in items]
            requests.append(Request(f"dynamodb:{op}", table_arn(table), {
                "dynamodb:LeadingKeys": sorted({k for key in keys for k in _leading_key(key)})}))
        return requests
    if op in {"TransactWriteItems", "TransactGetItems"}:
        actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                   "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
        return [Request(f"dynamodb:{actions[kind]}", table_arn(body["TableName"]),
                        _item_context(body))
                for item in params["TransactItems"] for kind, body in item.items()]
    raise AssertionError(f"no IAM mapping for dynamodb {op}")


def _sqs(call: Call) -> list[Request]:
    params, op = call.params, call.operation
    name = params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[-1]
    action = op.removesuffix("Batch")
    return [Request(f"sqs:{action}", queue_arn(name))]


def _s3(call: Call) -> list[Request]:
    params, op = call.params, call.operation
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    if op in {"ListObjectsV2", "ListObjects"}:
        return [Request("s3:ListBucket", bucket)]
    action = {"HeadObject": "GetObject"}.get(op, op)
    requests = [Request(f"s3:{action}", f"{bucket}/{params['Key']}")]
    if action == "GetObject" and call.error in {"NoSuchKey", "404"}:
        # S3 says an object is missing only to callers who may list the bucket (else 403).
        requests.append(Request("s3:ListBucket", bucket))
    return requests


def _ssm(call: Call) -> list[Request]:
    params, op = call.params, call.operation
    # GetParametersByPath is authorized on the path (its hierarchy without the last slash).
    names = params.get("Names") or [params.get("Name") or params["Path"].rstrip("/")]
    return [Request(f"ssm:{op}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{n.lstrip('/')}")
            for n in names]


def _secretsmanager(call: Call) -> list[Request]:
    if call.operation == "BatchGetSecretValue":
        # Allowed on no resource in particular; each secret returned needs GetSecretValue,
        # and a filtered batch needs ListSecrets.
        requests = [Request("secretsmanager:BatchGetSecretValue", "*")]
        requests += [Request("secretsmanager:ListSecrets", "*")] if call.params.get(
            "Filters") else []
        return requests + [Request("secretsmanager:GetSecretValue", value["ARN"])
                           for value in call.result.get("SecretValues", [])]
    secret = call.params["SecretId"]
    if not secret.startswith("arn:"):
        secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-AbCdEf"
    return [Request(f"secretsmanager:{call.operation}", secret)]


def iam_requests(call: Call, hash_keys: dict[str | None, str]) -> list[Request]:
    """The IAM requests of one call. `hash_keys` maps an index name (None: the table) to the
    attribute of its partition key."""
    if call.service == "dynamodb":
        return _dynamodb(call, hash_keys)
    mappers = {"sqs": _sqs, "s3": _s3, "ssm": _ssm, "secretsmanager": _secretsmanager}
    if call.service not in mappers:
        raise AssertionError(f"no IAM mapping for {call.service} {call.operation}")
    return mappers[call.service](call)
