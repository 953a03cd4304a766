"""RUNS_BACKEND=sqlite: the API and the executor work on the SQLite stores with no AWS at all.

The process is started with every AWS variable removed and botocore's request method
replaced by one that fails, so any store still reaching for AWS fails the test. Queues are
in-memory twins here (the local stack brings its own durable queue).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

AUTOMATIONS = """
automations:
  - name: two-steps
    trigger: { type: manual }
    actions:
      - { name: first, type: data, operator: set, props: { value: "{{trigger.data.n}}" } }
      - { name: second, type: data, operator: set, props: { value: { n: "{{steps.first}}" } } }
"""

SCRIPT = textwrap.dedent("""
    import json
    import uuid

    import botocore.client

    def no_aws(self, operation, params):
        raise AssertionError(f"AWS call {operation} with RUNS_BACKEND=sqlite")

    botocore.client.BaseClient._make_api_call = no_aws

    from chalice.test import Client

    from chalicelib.adapters.memory import MemoryQueue
    from chalicelib.bootstrap import Container, use_container
    from chalicelib.local.pollers import lambda_context, sqs_event
    from chalicelib.services.tokens import create_token

    deps = Container(overrides={"step_queue": MemoryQueue(), "exhausted_queue": MemoryQueue()})
    use_container(deps)
    import app

    _, secret = create_token(deps.tokens, "admin", deps.clock())
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    handler = app.app.handler_map["execute_steps"]
    with Client(app.app) as client:
        trigger = client.http.post("/api/automations/two-steps/trigger", headers=headers,
                                   body=json.dumps({"triggerData": {"n": 7}}))
        run_id = json.loads(trigger.body)["id"]
        for _ in range(20):
            sent = deps.step_queue.drain()
            if not sent:
                break
            messages = [{"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r",
                         "Body": json.dumps(body)} for body, _ in sent]
            handler(sqs_event(messages, "arn:aws:sqs:us-east-1:1:q", "us-east-1"),
                    lambda_context("execute_steps", 900)())
        detail = json.loads(client.http.get(f"/api/automations/runs/{run_id}",
                                            headers=headers).body)
        listed = json.loads(client.http.get("/api/automations/runs?automationName=two-steps",
                                            headers=headers).body)
    print(json.dumps({"trigger": trigger.status_code, "detail": detail, "list": listed,
                      "backend": deps.settings.backend, "db": deps.sqlite.path}))
""")


def test_api_and_executor_run_on_sqlite_without_aws(tmp_path):
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "two.yaml").write_text(AUTOMATIONS)
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "RUNS_", "POWERTOOLS_"))}
    env.update(RUNS_BACKEND="sqlite", RUNS_DB=str(tmp_path / "db" / "runs.db"),
               AUTOMATIONS_DIR=str(tmp_path / "automations"))

    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["backend"], out["db"]) == ("sqlite", str(tmp_path / "db" / "runs.db"))
    assert out["trigger"] == 202
    detail = out["detail"]
    assert detail["status"] == "completed", detail
    assert [(step["name"], step["status"], step["output"]) for step in detail["steps"]] == [
        ("first", "completed", 7), ("second", "completed", {"n": 7})]
    assert [event["to"] for event in detail["events"] if event["type"] == "transition"] == [
        "running", "completed"]
    assert out["list"]["pagination"]["total"] == 1
    assert [run["id"] for run in out["list"]["runs"]] == [detail["id"]]
    assert (tmp_path / "db" / "runs.db").exists()
