"""Large payloads go to S3 and come back whole; oversized triggers are refused; expired runs
are invisible. On moto, through the API."""
from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain.model import Run
from chalicelib.domain.statuses import RunStatus
from tests.support.apps import bearer, post
from tests.support.sqs import run_terminal

AUTOMATIONS = """
automations:
  - name: big
    trigger: { type: manual }
    actions:
      - { name: fetch, type: http, operator: get, props: { url: "{{secrets.SINK}}/big" } }
      - { name: size, type: data, operator: query,
          props: { input: "{{steps.fetch.body.blob}}", expression: "length(@)" } }
"""
MEGABYTE = 1024 * 1024


@pytest.fixture
def settings(settings):
    """Answers above the default 1 MB response cap (HTTP_MAX_RESPONSE_BYTES)."""
    return replace(settings, http_max_response_bytes=4 * MEGABYTE)


@pytest.fixture
def deps(wire, http_sink):
    http_sink.respond("/big", body={"blob": "x" * MEGABYTE})
    return wire(AUTOMATIONS)


def _raw_item(aws, deps, run_id: str, sort_key: str) -> dict:
    return aws.client("dynamodb").get_item(
        TableName=deps.settings.runs_table, Key={"pk": {"S": run_id}, "sk": {"S": sort_key}}
    )["Item"]


def _objects(aws, deps, run_id: str) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=deps.settings.payload_bucket,
                                                Prefix=f"runs/{run_id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_a_megabyte_step_output_round_trips_through_s3(aws, client, deps):
    response = post(client, "/api/automations/big/trigger", bearer(deps, "operator"), {})
    run_id = response.json_body["id"]
    assert run_terminal(deps, run_id).status.value == "completed"
    detail = client.http.get(f"/api/automations/runs/{run_id}",
                             headers=bearer(deps, "viewer")).json_body
    assert detail["steps"][0]["output"]["body"]["blob"] == "x" * MEGABYTE
    assert detail["steps"][1]["output"] == MEGABYTE  # the later step saw the whole value
    assert any("step-0" in key for key in _objects(aws, deps, run_id))
    item = _raw_item(aws, deps, run_id, "STEP#0000")
    assert len(json.dumps(item)) < deps.settings.item_budget_bytes


def test_trigger_data_over_the_budget_is_kept_whole(aws, client, deps):
    data = {"text": "y" * (40 * 1024)}
    response = post(client, "/api/automations/big/trigger", bearer(deps, "operator"),
                    {"triggerData": data})
    run_id = response.json_body["id"]
    detail = client.http.get(f"/api/automations/runs/{run_id}",
                             headers=bearer(deps, "viewer")).json_body
    assert detail["triggerData"] == data
    listed = client.http.get("/api/automations/runs", headers=bearer(deps, "viewer")).json_body
    size = len(json.dumps(data, separators=(",", ":")))
    assert listed["runs"][0]["triggerData"] == {"$offloaded": {"bytes": size}}  # named, not cut
    assert any("trigger" in key for key in _objects(aws, deps, run_id))


def test_a_large_error_body_is_recorded_whole(aws, client, deps, http_sink):
    http_sink.respond("/big", status=500, body={"blob": "e" * MEGABYTE})
    response = post(client, "/api/automations/big/trigger", bearer(deps, "operator"), {})
    run_id = response.json_body["id"]
    assert run_terminal(deps, run_id).status.value == "failed"
    detail = client.http.get(f"/api/automations/runs/{run_id}",
                             headers=bearer(deps, "viewer")).json_body
    assert detail["steps"][0]["status"] == "failed"
    assert detail["steps"][0]["error"]["detail"]["body"] == {"blob": "e" * MEGABYTE}
    assert any("error" in key for key in _objects(aws, deps, run_id))


def test_an_offloaded_payload_removed_from_the_bucket_is_named_not_a_500(aws, client, deps):
    data = {"text": "q" * (40 * 1024)}
    response = post(client, "/api/automations/big/trigger", bearer(deps, "operator"),
                    {"triggerData": data})
    run_id = response.json_body["id"]
    for key in _objects(aws, deps, run_id):
        aws.client("s3").delete_object(Bucket=deps.settings.payload_bucket, Key=key)
    detail = client.http.get(f"/api/automations/runs/{run_id}", headers=bearer(deps, "viewer"))
    assert detail.status_code == 200
    assert detail.json_body["triggerData"]["$offloaded"]["expired"] is True


def test_trigger_data_over_256_kb_is_refused_with_413(client, deps):
    response = post(client, "/api/automations/big/trigger", bearer(deps, "operator"),
                    {"triggerData": {"text": "z" * (300 * 1024)}})
    assert response.status_code == 413
    assert response.json_body["code"] == "PAYLOAD_TOO_LARGE"


def test_an_expired_run_is_invisible(client, deps):
    past = datetime.now(timezone.utc) - timedelta(days=40)
    expired = Run(id=str(uuid.uuid4()), automation_name="big", status=RunStatus.COMPLETED,
                  trigger_type="manual", trigger_data={}, created_at=past,
                  definition={"name": "big", "actions": []},
                  expires_at=int((past + timedelta(days=30)).timestamp()))
    deps.repo.create_run(expired)
    headers = bearer(deps, "viewer")
    assert client.http.get(f"/api/automations/runs/{expired.id}",
                           headers=headers).status_code == 404
    listed = client.http.get("/api/automations/runs", headers=headers).json_body
    assert expired.id not in [run["id"] for run in listed["runs"]]


def test_runs_expire_after_the_retention(client, deps):
    response = post(client, "/api/automations/big/trigger", bearer(deps, "operator"), {})
    run = deps.repo.get_run(response.json_body["id"])
    expected = run.created_at + timedelta(days=deps.settings.retention_days)
    assert abs(run.expires_at - expected.timestamp()) < 2
