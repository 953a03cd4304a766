"""Drive every Lambda function of the stack through its real handler on moto, each as the
template runs it (its own environment variables, a cold start), recording the AWS calls each
makes (tests/infra/test_least_privilege.py)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any, Iterator

from app import app
from chalicelib.adapters.counters import StreamPoller
from chalicelib.adapters.sqs_queue import SqsQueue
from chalicelib.domain.clock import utcnow
from chalicelib.local.pollers import lambda_context, scheduled_event, sqs_event
from chalicelib.settings import Settings
from tests.support.apps import bearer, post

from .iam_calls import CallRecorder
from .iam_policy import StackResolver

AUTOMATIONS = """
automations:
  - name: big
    trigger: { type: manual }
    actions:
      - { name: copy, type: data, operator: set, props: { value: "{{trigger.data}}" } }
      - { name: call, type: http, operator: post, props: { url: "{{secrets.SINK}}/big", body: { size: "{{steps.copy.pad}}" } } }
  - name: boom
    trigger: { type: manual }
    actions:
      - { name: fail, type: flow, operator: fail, props: { message: "on purpose" } }
  - name: flaky
    trigger: { type: manual }
    retry: { maxAttempts: 2, delayMs: 100 }
    actions:
      - { name: call, type: http, operator: post, props: { url: "{{secrets.SINK}}/down" } }
  - name: one-at-a-time
    trigger: { type: manual }
    concurrency: { limit: 1 }
    actions:
      - { name: note, type: data, operator: set, props: { value: 1 } }
  - name: waits
    trigger: { type: manual }
    timeout: 60000
    actions:
      - { name: nap, type: delay, operator: wait, props: { ms: 60000 } }
  - name: hook
    trigger: { type: webhook, deduplicationKey: "{{trigger.data.body.id}}" }
    actions:
      - { name: refuse, type: flow, operator: fail, props: { message: "not today" } }
  - name: minutely
    trigger: { type: cron, expression: "* * * * *" }
    actions:
      - { name: note, type: data, operator: set, props: { value: 1 } }
  - name: on-failure
    trigger: { type: automation-failure, statuses: [failed, exhausted, timed-out] }
    actions:
      - { name: note, type: data, operator: set, props: { value: "{{trigger.data.run.id}}" } }
"""

PAD = {"pad": "x" * 20_000}  # over the item budget: offloaded to S3


class FunctionDriver:
    """Runs each function's code paths with its calls attributed to it."""

    def __init__(self, recorder: CallRecorder, client: Any, deps: Any, aws: Any,
                 resolver: StackResolver) -> None:
        self.recorder, self.client, self.deps, self.aws = recorder, client, deps, aws
        self.resolver = resolver
        self.admin, self.viewer = bearer(deps, "admin"), bearer(deps, "viewer")

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        """A cold start of `function` with the template's environment; its calls recorded."""
        env = {**os.environ, **self.resolver.environment(function)}
        self.deps.settings = replace(Settings.from_env(env), allow_private_http=True)
        self.deps._built.clear()  # clients and looked-up queue URLs are per cold start
        with self.recorder.as_function(function):
            yield

    def trigger(self, name: str, data: dict | None = None) -> str:
        response = post(self.client, f"/api/automations/{name}/trigger", self.admin,
                        {"triggerData": data or {}})
        assert response.status_code == 202, response.body
        return response.json_body["id"]

    def deliver(self, queue: SqsQueue, function: str, handler: str, timeout_s: int) -> int:
        """Hand the visible messages of `queue` to a handler, as Lambda's event source would."""
        delivered = 0
        while messages := queue.receive(max_messages=10, wait_seconds=0):
            for message in messages:
                event = sqs_event([message], queue.arn, "us-east-1")
                with self.running(function):
                    result = app.handler_map[handler](
                        event, lambda_context(function, timeout_s)())
                if not result["batchItemFailures"]:
                    queue.delete(message["ReceiptHandle"])
                delivered += 1
        return delivered

    def execute(self) -> None:
        """Run every step message until the step queue is empty."""
        steps = SqsQueue(self.deps.settings.step_queue, self.deps.settings)
        while self.deliver(steps, "ExecuteSteps", "execute_steps", 900):
            pass

    def api(self) -> dict[str, str]:
        """Every route family as operators use it; returns run ids by automation."""
        ids: dict[str, str] = {}
        with self.running("APIHandler"):
            for name, data in (("big", PAD), ("boom", {}), ("flaky", {}), ("waits", PAD)):
                ids[name] = self.trigger(name, data)
            # The first takes the slot, the second waits for it, the third is cancelled.
            ids["serial"], _, waiting = (self.trigger("one-at-a-time") for _ in range(3))
            cancel = post(self.client, f"/api/automations/runs/{waiting}/cancel", self.admin)
            assert cancel.status_code == 200, cancel.body
            for path in ("/api/automations", "/api/automations/runs?status=pending",
                         "/api/automations/runs?automationName=big&pageSize=5",
                         f"/api/automations/runs/{ids['big']}"):
                assert self.client.http.get(path, headers=self.viewer).status_code == 200, path
            hook = post(self.client, "/api/automations/hook/webhook", {}, {"id": "evt-1"})
            assert hook.status_code == 202, hook.body
        self.execute()
        self._remove_trigger_payload(ids["big"])
        with self.running("APIHandler"):
            # A payload the bucket's lifecycle removed: named in the detail (404, not 403).
            detail = self.client.http.get(f"/api/automations/runs/{ids['big']}",
                                          headers=self.viewer)
            assert detail.status_code == 200, detail.body
            replay = post(self.client, f"/api/automations/runs/{ids['boom']}/replay", self.admin)
            assert replay.status_code == 202, replay.body
            # The same delivery after its run failed: let through as a new run.
            again = post(self.client, "/api/automations/hook/webhook", {}, {"id": "evt-1"})
            assert again.status_code == 202, again.body
            # Bulk: a replay whose every run fails (its claims given back), a cancel that
            # finds only ended runs.
            bulk = [post(self.client, f"/api/automations/runs/{action}", self.admin, body)
                    for action, body in (("replay", {"automationName": "boom",
                                                     "fromStep": "nope"}),
                                         ("cancel", {"automationName": "boom"}))]
            assert [b.status_code for b in bulk] == [202, 202], [b.body for b in bulk]
        self.execute()
        with self.running("APIHandler"):
            for started in bulk:
                batch = self.client.http.get(
                    f"/api/automations/batches/{started.json_body['batchId']}",
                    headers=self.viewer)
                assert batch.status_code == 200 and batch.json_body["done"], batch.body
            assert batch.json_body["skipped"] >= 1
        return ids

    def _remove_trigger_payload(self, run_id: str) -> None:
        s3, bucket = self.aws.client("s3"), self.deps.settings.payload_bucket
        (blob,) = s3.list_objects_v2(Bucket=bucket, Prefix=f"runs/{run_id}/trigger")["Contents"]
        s3.delete_object(Bucket=bucket, Key=blob["Key"])

    def dead_letters(self, finished: str) -> None:
        """Step messages that crashed the executor repeatedly: of a run holding a concurrency
        slot (another waits for it), and of a finished run with offloaded payloads."""
        holding, _waiting = (self.trigger("one-at-a-time") for _ in range(2))
        steps = SqsQueue(self.deps.settings.step_queue, self.deps.settings)
        while messages := steps.receive(max_messages=10, wait_seconds=0):
            for message in messages:  # lost with the crashed executor
                steps.delete(message["ReceiptHandle"])
        dead = SqsQueue(self.deps.settings.step_dlq, self.deps.settings)
        for run_id in (holding, finished):
            dead.send({"runId": run_id, "stepIndex": 0})
        self.deliver(dead, "ConsumeStepDlq", "consume_step_dlq", 30)

    def tick(self) -> None:
        """A minute tick (cron, sweep), then one 400 days later (timeouts, purges)."""
        now = utcnow()
        for later in (timedelta(0), timedelta(days=400)):
            self.deps.overrides["clock"] = lambda later=later: now + later
            with self.running("Tick"):
                app.handler_map["tick"](scheduled_event(now + later, "us-east-1", "tick"),
                                        lambda_context("Tick", 120)())

    def count(self) -> None:
        """The table's stream so far, as one batch of the counter's event source."""
        batches = StreamPoller(self.deps.settings).fetch().values()
        with self.running("CountRuns"):
            app.handler_map["count_runs"]({"Records": [r for b in batches for r in b]},
                                          lambda_context("CountRuns", 30)())

    def token_admin(self) -> None:
        """The /api/tokens routes (the TokenAdmin function): issue, list, revoke."""
        with self.running("TokenAdmin"):
            issued = post(self.client, "/api/tokens", self.admin,
                          {"role": "viewer", "name": "by admin", "expiresInDays": 7})
            assert issued.status_code == 201, issued.body
            listed = self.client.http.get("/api/tokens", headers=self.admin)
            assert listed.status_code == 200, listed.body
            token_id = issued.json_body["id"]
            revoked = self.client.http.delete(f"/api/tokens/{token_id}", headers=self.admin)
            assert revoked.status_code == 200, revoked.body

    def everything(self) -> None:
        ids = self.api()
        self.dead_letters(finished=ids["big"])
        self.tick()
        self.count()
        self.token_admin()
