"""A seeded fault simulation: runs triggered and cancelled through the services, step
messages delivered by the real worker functions from simulated SQS queues (visibility,
receive counts, redrive to the DLQ, FIFO deduplication, duplicate and reordered delivery), a
sweeper tick every virtual minute, and the container's fault plan crashing, throttling and
losing answers. Time is virtual, so waits and backoffs cost nothing.

`FaultSim(...).run()` drives a load with faults, then drains it without faults, and returns
the figures; `violations()` lists every broken invariant (empty when all hold).
"""
from __future__ import annotations

import json
import random
import textwrap
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field

from chalicelib.actions.base import ActionContext, Props
from chalicelib.actions.registry import ActionSpec, default_registry
from chalicelib.adapters.memory import (
    MemoryBlobStore, MemoryMarkers, MemoryRateLimiter, MemoryRunRepository, MemorySlots,
    MemoryTokenStore,
)
from chalicelib.bootstrap import Container
from chalicelib.domain.definitions import load_catalog
from chalicelib.domain.model import RunFilter
from chalicelib.domain.retry import ActionError
from chalicelib.domain.statuses import TERMINAL, RunStatus, StepStatus
from chalicelib.handlers.worker import process_dead_letter, process_step_record
from chalicelib.services import lifecycle
from chalicelib.services.runs import cancel_run
from chalicelib.services.sweeper import sweep
from chalicelib.services.trigger import start_run
from chalicelib.settings import Settings
from tests.support.faults import Crash, FaultPlan

QUEUE_VISIBILITY_S = 5400  # the step queue's (infra/resources.yaml)
DLQ_VISIBILITY_S = 180
MAX_RECEIVES = 5  # the step queue's redrive policy
FIFO_DEDUP_WINDOW = timedelta(minutes=5)
HANDLED = ("failed", "exhausted", "timed-out")

AUTOMATIONS = """
automations:
  - name: plain
    trigger: { type: manual }
    actions:
      - { name: a, type: test, operator: probe }
      - { name: b, type: test, operator: probe }
      - { name: c, type: test, operator: probe }
  - name: retrying
    trigger: { type: manual }
    actions:
      - { name: flaky, type: test, operator: probe, props: { failRate: 0.7 },
          retry: { maxAttempts: 3, delayMs: 1500 } }
      - { name: after, type: test, operator: probe }
  - name: limited
    trigger: { type: manual }
    concurrency: { limit: 2 }
    actions:
      - { name: a, type: test, operator: probe }
      - { name: b, type: test, operator: probe, props: { failRate: 0.3 },
          retry: { maxAttempts: 2, delayMs: 500 } }
  - name: waiting
    trigger: { type: manual }
    timeout: 60000
    actions:
      - { name: nap, type: delay, operator: wait, props: { ms: 4000 } }
      - { name: after, type: test, operator: probe }
  - name: failing
    trigger: { type: manual }
    actions:
      - { name: a, type: test, operator: probe }
      - { name: boom, type: flow, operator: fail, props: { message: "fails on purpose" } }
  - name: handler
    trigger: { type: automation-failure, statuses: [failed, exhausted, timed-out] }
    actions:
      - { name: note, type: test, operator: probe }
"""
LOAD = ("plain", "retrying", "limited", "waiting", "failing")


class SimClock:
    """Virtual time: moves only when the simulation says so."""

    def __init__(self) -> None:
        self.now = datetime(2031, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()


@dataclass
class SimMessage:
    id: str
    body: dict[str, Any]
    visible_at: datetime
    receipt: str = ""
    receives: int = 0


class SimQueue:
    """SQS as the executor sees it: delays, visibility, receive counts, redrive, FIFO dedup;
    each send may be delivered twice (`duplicate` rate) and receives pick any visible one."""

    def __init__(self, clock: SimClock, rng: random.Random, *, visibility_s: int,
                 duplicate: float = 0.0, fifo: bool = False, dlq: "SimQueue | None" = None):
        self.clock, self.rng = clock, rng
        self.visibility_s, self.duplicate, self.fifo, self.dlq = visibility_s, duplicate, fifo, dlq
        self.messages: dict[str, SimMessage] = {}
        self.by_receipt: dict[str, str] = {}
        self.dedup: dict[str, datetime] = {}
        self.sent = 0
        self.delivered: list[dict[str, Any]] = []  # bodies of messages deleted after processing

    def send(self, body: dict[str, Any], delay_seconds: int = 0,
             dedup_id: str | None = None) -> str:
        now = self.clock()
        if self.fifo and dedup_id is not None:
            first = self.dedup.get(dedup_id)
            if first is not None and now - first < FIFO_DEDUP_WINDOW:
                return f"dedup-{dedup_id}"
            self.dedup[dedup_id] = now
        copies = 2 if (not self.fifo and self.rng.random() < self.duplicate) else 1
        message_id = ""
        for _ in range(copies):
            message_id = str(uuid.uuid4())
            delay = timedelta(seconds=0 if self.fifo else max(0, min(900, int(delay_seconds))))
            self.messages[message_id] = SimMessage(message_id, json.loads(json.dumps(body)),
                                                   now + delay)
            self.sent += 1
        return message_id

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        message = self.messages.get(self.by_receipt.get(receipt_handle, ""))
        if message is None or message.receipt != receipt_handle:
            raise RuntimeError("ReceiptHandleIsInvalid")
        message.visible_at = self.clock() + timedelta(seconds=seconds)

    def receive(self) -> SimMessage | None:
        """One visible message, picked at random (SQS standard queues do not keep order)."""
        now = self.clock()
        visible = [m for m in self.messages.values() if m.visible_at <= now]
        if not visible:
            return None
        message = self.rng.choice(visible)
        if self.dlq is not None and message.receives >= MAX_RECEIVES:
            del self.messages[message.id]
            self.dlq.send(message.body)
            return self.receive()
        message.receives += 1
        message.receipt = str(uuid.uuid4())
        self.by_receipt[message.receipt] = message.id
        message.visible_at = now + timedelta(seconds=self.visibility_s)
        return message

    def delete(self, message: SimMessage) -> None:
        if self.messages.pop(message.id, None) is not None:
            self.delivered.append(message.body)

    def next_visible(self) -> datetime | None:
        return min((m.visible_at for m in self.messages.values()), default=None)

    def drain(self) -> list[tuple[dict[str, Any], int]]:
        """Every message still queued (a FIFO consumer reads them all)."""
        taken = [(m.body, 0) for m in self.messages.values()]
        self.delivered += [body for body, _ in taken]
        self.messages.clear()
        return taken


class ProbeProps(Props):
    fail_rate: float = Field(default=0.0, ge=0, le=1)


@dataclass
class Ledger:
    """Every execution of a probe step, and any that ran after the step was recorded."""

    executions: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    reexecuted: list[tuple[str, str]] = field(default_factory=list)


def probe_spec(repo, ledger: Ledger, seed: int) -> ActionSpec:
    """test/probe: notes each execution, fails (retryable) at its rate, returns a nonce."""
    def probe(props: ProbeProps, ctx: ActionContext) -> dict[str, Any]:
        key = (ctx.run_id, ctx.step_name)
        _, steps = repo.get_detail(ctx.run_id)
        recorded = next((s for s in steps if s.name == ctx.step_name), None)
        if recorded is not None and recorded.status in (StepStatus.COMPLETED, StepStatus.FAILED):
            ledger.reexecuted.append(key)
        nonce = str(uuid.uuid4())
        ledger.executions[key].append(nonce)
        draw = random.Random(f"{seed}:{ctx.run_id}:{ctx.step_name}:{ctx.attempt}").random()
        if draw < props.fail_rate:
            raise ActionError("probe failed on purpose", "ProbeError", retryable=True)
        return {"nonce": nonce}

    return ActionSpec("test", "probe", ProbeProps, probe)


@dataclass
class Rates:
    crash: float = 0.02
    throttle: float = 0.02
    lost: float = 0.03
    duplicate: float = 1.0
    cancel: float = 0.2
    # Follow-ups and admission run once per run: crash there more often to reach them.
    hot: dict[str, float] = field(default_factory=lambda: {"lifecycle.": 0.12,
                                                           "admission.": 0.08})


class FaultSim:
    """One seeded simulation over the in-memory twins (or any ports passed in `ports`)."""

    def __init__(self, seed: int, runs: int, tmp_path: Path, rates: Rates | None = None,
                 ports: dict[str, Any] | None = None, clock: SimClock | None = None,
                 settle=lambda: None) -> None:
        self.seed, self.runs_wanted = seed, runs
        self.settle = settle  # brings derived data (stream-fed counters) up to date
        self.rates = rates or Rates()
        self.rng = random.Random(seed)
        self.clock = clock or SimClock()
        self.plan = FaultPlan(seed, crash=self.rates.crash, throttle=self.rates.throttle,
                              lost=self.rates.lost, hot=self.rates.hot)
        self.ledger = Ledger()
        self.dlq = SimQueue(self.clock, self.rng, visibility_s=DLQ_VISIBILITY_S)
        self.steps = SimQueue(self.clock, self.rng, visibility_s=QUEUE_VISIBILITY_S,
                              duplicate=self.rates.duplicate, dlq=self.dlq)
        self.exhausted = SimQueue(self.clock, self.rng, visibility_s=30, fifo=True)
        ports = dict(ports or {})
        repo = ports.setdefault("repo", MemoryRunRepository(clock=self.clock.epoch))
        ports.setdefault("markers", MemoryMarkers(clock=self.clock.epoch))
        ports.setdefault("slots", MemorySlots())
        ports.setdefault("rate_limiter", MemoryRateLimiter())
        registry = default_registry()
        registry.register(probe_spec(repo, self.ledger, seed))
        folder = tmp_path / f"automations-{seed}"
        folder.mkdir(exist_ok=True)
        (folder / "sim.yaml").write_text(textwrap.dedent(AUTOMATIONS))
        self.deps = Container(settings=Settings(allow_private_http=True), overrides={
            "tokens": MemoryTokenStore(), "blobs": MemoryBlobStore(), **ports,
            "step_queue": self.steps, "exhausted_queue": self.exhausted,
            "catalog": load_catalog(folder, registry), "actions": registry,
            "clock": self.clock, "faults": self.plan,
        })
        self.repo = repo  # unfaulted, for the checks
        self.accepted: list[str] = []  # run ids a trigger request answered
        self.figures: Counter[str] = Counter()
        self.next_sweep = self.clock.now

    # -- driving ------------------------------------------------------------------------
    def run(self, max_events: int = 200_000) -> Counter[str]:
        """The load with faults, then the drain without; returns the figures."""
        for _ in range(max_events):
            if len(self.accepted) + self.figures["triggerFailed"] >= self.runs_wanted:
                break
            self._trigger()
            for _ in range(self.rng.randint(0, 6)):
                self._step()
            if self.rng.random() < self.rates.cancel:
                self._cancel()
        self.plan.enabled = False
        for _ in range(max_events):
            if not self._step() and self._settled():
                break
        self.figures.update({f"fault:{k}": v for k, v in self.plan.injected.items()
                             if ":" not in k})
        self.figures["stepMessagesSent"] = self.steps.sent
        self.figures["runs"] = len(self._all_runs())
        self.figures["accepted"] = len(self.accepted)
        return self.figures

    def _trigger(self) -> None:
        name = self.rng.choice(LOAD)
        try:
            run = start_run(self.deps, self.deps.catalog.get(name), "manual",
                            {"n": len(self.accepted)}, actor="sim")
        except (Crash, Exception):  # noqa: BLE001 - the request failed (a 5xx)
            self.figures["triggerFailed"] += 1
            return
        self.accepted.append(run.id)

    def _cancel(self) -> None:
        if not self.accepted:
            return
        run_id = self.rng.choice(self.accepted)
        try:
            run = cancel_run(self.deps.repo, run_id, actor="sim", now=self.clock())
            lifecycle.cancelled(self.deps, run)
            self.figures["cancelled"] += 1
        except (Crash, Exception):  # noqa: BLE001 - 409, or the request failed
            self.figures["cancelFailed"] += 1

    def _step(self) -> bool:
        """Deliver one message (or tick the sweeper); advance time when nothing is due.
        False when there is nothing left to do at all."""
        if self.clock.now >= self.next_sweep:
            self.next_sweep = self.clock.now + timedelta(seconds=60)
            try:
                sweep(self.deps)
            except (Crash, Exception):  # noqa: BLE001 - the next tick tries again
                self.figures["sweepFailed"] += 1
            return True
        for queue, handle in ((self.steps, self._deliver_step), (self.dlq, self._deliver_dead)):
            message = queue.receive()
            if message is not None:
                handle(queue, message)
                return True
        due = [t for t in (self.steps.next_visible(), self.dlq.next_visible()) if t]
        if not due and self._settled():
            return False
        self.clock.now = min(due + [self.next_sweep]) if due else self.next_sweep
        return True

    def _record(self, message: SimMessage) -> SQSRecord:
        return SQSRecord({
            "messageId": message.id, "receiptHandle": message.receipt,
            "body": json.dumps(message.body), "messageAttributes": {},
            "attributes": {"ApproximateReceiveCount": str(message.receives)},
            "eventSource": "aws:sqs",
        })

    def _deliver_step(self, queue: SimQueue, message: SimMessage) -> None:
        self.figures["deliveries"] += 1
        try:
            process_step_record(self.deps, self._record(message), lambda: 900_000)
        except Crash:
            self.figures["crashedDeliveries"] += 1  # hidden for whatever it was set to
            return
        except Exception:  # noqa: BLE001 - reported failed; the worker set its backoff
            self.figures["failedDeliveries"] += 1
            return
        queue.delete(message)

    def _deliver_dead(self, queue: SimQueue, message: SimMessage) -> None:
        self.figures["deadLetters"] += 1
        try:
            process_dead_letter(self.deps, self._record(message))
        except (Crash, Exception):  # noqa: BLE001 - back after the DLQ's visibility
            return
        queue.delete(message)

    def _all_runs(self):
        runs, after = [], None
        while True:
            page = self.repo.list_runs(RunFilter(), limit=500, after=after)
            runs += page.runs
            if not page.has_more:
                return runs
            after = page.runs[-1].sort_key

    def _settled(self) -> bool:
        return all(run.status in TERMINAL for run in self._all_runs()) and \
            not self.steps.messages and not self.dlq.messages

    # -- checking -----------------------------------------------------------------------
    def violations(self) -> list[str]:
        """Every invariant of issue 11 that does not hold after the drain."""
        found: list[str] = []
        self.settle()
        runs = {run.id: run for run in self._all_runs()}
        found += [f"lost: accepted run {r} is gone" for r in self.accepted if r not in runs]
        found += [f"stuck: {r.id} ({r.automation_name}) is {r.status.value}"
                  for r in runs.values() if r.status not in TERMINAL]
        found += [f"re-executed: {run_id} step {step} after it was recorded"
                  for run_id, step in self.ledger.reexecuted]
        self.exhausted.drain()
        exhausted_messages = Counter(body["runId"] for body in self.exhausted.delivered)
        handler_runs = Counter(r.trigger_data["run"]["id"] for r in runs.values()
                               if r.trigger_type == "automation-failure")
        for run in runs.values():
            found += self._check_steps(run)
            wanted = 1 if run.status == RunStatus.EXHAUSTED else 0
            if exhausted_messages[run.id] != wanted:
                found.append(f"exhausted messages: {run.id} ({run.status.value}) has "
                             f"{exhausted_messages[run.id]}, not {wanted}")
            wanted = 1 if (run.status.value in HANDLED and run.trigger_type != "automation-failure"
                           ) else 0
            if handler_runs[run.id] != wanted:
                found.append(f"handler runs: {run.id} ({run.status.value}) has "
                             f"{handler_runs[run.id]}, not {wanted}")
        for automation in self.deps.catalog.all():
            held = self.deps.slots.holders(automation.name)
            if held:
                found.append(f"leaked slots: {automation.name} still held by {sorted(held)}")
        for status in RunStatus:
            listed = sum(1 for r in runs.values() if r.status == status)
            counted = self.repo.count_runs(RunFilter(statuses=(status,)))
            if counted != listed:
                found.append(f"counter: {status.value} counts {counted}, {listed} runs have it")
        return found

    def _check_steps(self, run) -> list[str]:
        found = []
        _, steps = self.repo.get_detail(run.id)
        for step in steps:
            if step.status == StepStatus.RUNNING and run.status in TERMINAL:
                found.append(f"running step: {run.id} step {step.name} in a "
                             f"{run.status.value} run")
            if step.type == "test" and step.status == StepStatus.COMPLETED:
                nonces = self.ledger.executions.get((run.id, step.name), [])
                if (step.output or {}).get("nonce") not in nonces:
                    found.append(f"phantom result: {run.id} step {step.name}")
        if run.status == RunStatus.COMPLETED and len(steps) != len(run.definition["actions"]):
            found.append(f"completed run {run.id} recorded {len(steps)} steps")
        return found
