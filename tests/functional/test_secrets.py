"""No secret is ever stored or logged (SPEC 7), whichever source holds it: a webhook run on moto
touches every path a secret can leak through (webhook headers and query, a step that uses it in
a URL, a header and a body, a later step whose response echoes it in every encoding, an
automation/call passing it on, an error quoting it), then every stored item (DynamoDB, S3, SQS)
and every captured log line is searched for every form of every secret."""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from urllib.parse import quote, quote_plus, urlencode

import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import use_container
from tests.support.apps import install
from tests.support.drive import drain_queue
from tests.support.sqs import run_terminal

APIKEY = "sk_live_9f8e7d6c5b4a3"
PASSWORD = 'pa ss/w\u00f6rd+"q\\z1'  # changes under URL, JSON and base64 encoding
STACK_PATH = "/test-stack/secrets/"

AUTOMATIONS = """
automations:
  - name: leaky
    trigger: { type: webhook }
    actions:
      - name: send
        type: http
        operator: post
        props:
          url: "{{secrets.SINK}}/send?key={{secrets.APIKEY}}"
          headers: { X-Auth-Token: "{{secrets.APIKEY}}", X-Client-Secret: "{{secrets.PASSWORD}}" }
          body: { password: "{{secrets.PASSWORD}}", key: "{{secrets.APIKEY}}" }
      - name: echo
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/echo" }
      - name: call
        type: automation
        operator: call
        props: { automation: child, triggerData: { key: "{{secrets.APIKEY}}",
                                                   pw: "{{secrets.PASSWORD}}" } }
      - name: fail
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/fail?key={{secrets.APIKEY}}&pw={{secrets.PASSWORD}}" }
  - name: child
    trigger: { type: manual }
    actions:
      - { name: keep, type: data, operator: set, props: { value: "{{trigger.data}}" } }
"""


def forms(secret: str) -> set[str]:
    """How a secret can appear: raw, URL-encoded, base64, JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), quote(secret),
            base64.b64encode(secret.encode()).decode(),
            base64.urlsafe_b64encode(secret.encode()).decode(),
            json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}


def echoes() -> dict:
    """An answer quoting both secrets in every form (the step asked for neither)."""
    return {name: {"raw": value, "url": quote(value, safe=""), "plus": quote_plus(value),
                   "b64": "Basic " + base64.b64encode(f"user:{value}".encode()).decode(),
                   "b64url": base64.urlsafe_b64encode(value.encode()).decode(),
                   "json": json.dumps({"v": value}),
                   "link": f"https://example.com/cb?token={quote(value, safe='')}"}
            for name, value in (("apikey", APIKEY), ("password", PASSWORD))}


def _store_secrets(aws, backend: str, sink_url: str) -> None:
    values = {"SINK": sink_url, "APIKEY": APIKEY, "PASSWORD": PASSWORD}
    for name, value in values.items():
        if backend == "ssm":
            aws.client("ssm").put_parameter(Name=STACK_PATH + name, Value=value,
                                            Type="SecureString")
        else:
            aws.client("secretsmanager").create_secret(Name=STACK_PATH.lstrip("/") + name,
                                                       SecretString=value)
    # A secret of another stack is not ours: never read.
    if backend == "ssm":
        aws.client("ssm").put_parameter(Name="/other-stack/secrets/APIKEY", Value="x" * 20,
                                        Type="SecureString")


@pytest.fixture(params=["env", "ssm", "secretsmanager"])
def deps(request, aws, settings, tmp_path, http_sink, monkeypatch):
    backend = request.param
    if backend == "env":
        monkeypatch.setenv("RUNS_SECRET_SINK", http_sink.url)
        monkeypatch.setenv("RUNS_SECRET_APIKEY", APIKEY)
        monkeypatch.setenv("RUNS_SECRET_PASSWORD", PASSWORD)
    else:
        _store_secrets(aws, backend, http_sink.url)
    configured = replace(settings, secrets_backend=backend, secrets_path=STACK_PATH)
    yield install(configured, tmp_path, AUTOMATIONS)
    use_container(None)


def _leaves(value):
    """Every string inside a decoded JSON / DynamoDB value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", errors="replace")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _leaves(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _leaves(item)


def stored_text(aws, settings) -> list[str]:
    """Every string stored anywhere: table items, payload objects, queued messages."""
    found: list[str] = []
    dynamodb = aws.client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=settings.runs_table):
        found += _leaves(page["Items"])
    s3 = aws.client("s3")
    for item in s3.list_objects_v2(Bucket=settings.payload_bucket).get("Contents", []):
        found.append(s3.get_object(Bucket=settings.payload_bucket,
                                   Key=item["Key"])["Body"].read().decode())
    sqs = aws.client("sqs")
    for queue in (settings.step_queue, settings.step_dlq, settings.exhausted_queue):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=0).get("Messages", [])
        found += [m["Body"] for m in messages]
    return found


def leaks(texts: list[str]) -> list[tuple[str, str]]:
    """(form, text) for every form of a secret found in any text."""
    return [(form, text[:200]) for text in texts for secret in (APIKEY, PASSWORD)
            for form in forms(secret) if form in text]


def test_no_secret_in_any_form_is_stored_or_logged(deps, aws, settings, http_sink, capsys,
                                                   caplog):
    caplog.set_level(logging.DEBUG)
    http_sink.respond("/echo", body=echoes(),
                      headers={"X-Amz-Security-Token": APIKEY, "X-Upstream-Auth": APIKEY})
    http_sink.respond("/fail", status=400, body={"error": f"bad key {APIKEY}",
                                                 "echo": PASSWORD})
    query = urlencode({"key": APIKEY, "pw": PASSWORD})
    with Client(app) as client:
        response = client.http.post(
            f"/api/automations/leaky/webhook?{query}",
            headers={"Content-Type": "application/json", "X-Auth-Token": APIKEY,
                     "X-Amz-Security-Token": APIKEY, "X-Api-Key": APIKEY,
                     "Authorization": f"Bearer {APIKEY}"},
            body=json.dumps({"note": base64.b64encode(PASSWORD.encode()).decode(),
                             "key": APIKEY}))
    assert response.status_code == 202, response.body
    run = run_terminal(deps, response.json_body["id"])
    drain_queue(deps)  # the child run, started by automation/call

    assert run.status.value == "failed"  # the last step failed with the secret in its error
    # The secrets did reach their destinations: masking happens only on the way to storage.
    sent = http_sink.last("/send")
    assert sent.header("X-Auth-Token") == APIKEY and sent.json()["password"] == PASSWORD
    _, steps = deps.repo.get_detail(run.id)
    assert [s.status.value for s in steps] == ["completed", "completed", "completed", "failed"]
    child = deps.repo.get_run(steps[2].output["runId"])
    assert child.trigger_data == {"key": "[redacted]", "pw": "[redacted]"}
    assert "[redacted]" in json.dumps(steps[3].error)

    assert leaks(stored_text(aws, settings)) == []
    captured = capsys.readouterr()
    lines = [captured.out, captured.err, *(r.getMessage() for r in caplog.records),
             caplog.text]
    assert leaks(lines) == []


def test_stack_traces_show_module_relative_paths_only(deps, aws, settings, http_sink):
    http_sink.respond("/fail", status=400, body={"error": "no"})
    with Client(app) as client:
        response = client.http.post("/api/automations/leaky/webhook", body=b"{}",
                                    headers={"Content-Type": "application/json"})
    run = run_terminal(deps, response.json_body["id"])
    _, steps = deps.repo.get_detail(run.id)
    stack = steps[3].attempts[-1]["stack"]
    assert 'File "chalicelib/' in stack
    assert str(settings.automations_dir) not in stack and "/chalicelib/" not in stack
    assert "site-packages" not in stack
