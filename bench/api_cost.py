"""Requests and capacity units per API call at 100, 1,000 and 10,000 runs:
`python -m bench.api_cost` (part of `make bench`).

Runs are seeded straight into moto's DynamoDB backend (items built by the repository's own
mapping, counters set to the seeded totals), since writing 10,000 runs through the API on
moto would take longer than the whole bench may. Every call then goes through the API handler
(chalice.test.Client) and is counted by bench/meter.py: list (each filter combination, a
second page, a cursor), detail, cancel, replay and trigger. A call whose cost does not grow
with the table is printed the same in each column.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .cost import LOGS, METER, OUT, ROOT, Bench
from .meter import Usage

SIZES = (100, 1_000, 10_000)
AUTOMATIONS = ("set-1", "set-3", "set-10")
TRIGGERS = ("manual", "webhook", "cron")
BASE = datetime(2030, 1, 1, tzinfo=timezone.utc)
RUNS = "/api/automations/runs"


def status_of(index: int) -> str:
    if index % 50 == 2:
        return "pending"
    if index % 50 == 3:
        return "running"
    return "failed" if index % 20 == 0 else "completed"


class Seeder:
    """Writes runs (and the counters they imply) into moto's table, without requests."""

    def __init__(self, bench: Bench) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415

        self.bench = bench
        self.settings = bench.deps.settings
        self.table = dynamodb_backends[DEFAULT_ACCOUNT_ID][self.settings.region].get_table(
            self.settings.runs_table)
        self.repo = bench.deps.repo.inner
        self.count = 0
        self.totals: dict[str, Counter] = defaultdict(Counter)
        with METER.paused():
            self.refs = {name: self.repo._definitions.ref(
                bench.deps.catalog.get(name).to_dict()) for name in AUTOMATIONS}
        self.first_id: str | None = None
        self.detail_id: str | None = None
        self.pending: list[str] = []

    def _put(self, item) -> None:
        """Store the item in moto's table as its PutItem would, minus the checks: moto
        re-sizes the whole item on every attribute it sets (quadratic; minutes at 10,000),
        and seeded runs need no stream records (the counters are written from totals)."""
        from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict  # noqa: PLC0415,E501

        attrs = item.serialize()
        stored = Item.__new__(Item)
        stored.hash_key, stored.range_key = DynamoType(attrs["pk"]), DynamoType(attrs["sk"])
        stored.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        for name, value in attrs.items():
            dict.__setitem__(stored.attrs, name, DynamoType(value))
        self.table.items[stored.hash_key][stored.range_key] = stored

    def seed_to(self, size: int) -> None:
        from chalicelib.adapters.counters import counter_keys  # noqa: PLC0415
        from chalicelib.adapters.dynamo_models import run_to_item, step_to_item  # noqa: PLC0415
        from chalicelib.domain.model import Run, Step  # noqa: PLC0415
        from chalicelib.domain.statuses import RunStatus, StepStatus  # noqa: PLC0415

        tables = self.repo.tables
        expires = int(time.time()) + 30 * 86400
        while self.count < size:
            index = self.count
            name, trigger = AUTOMATIONS[index % 3], TRIGGERS[(index // 3) % 3]
            status = status_of(index)
            created = BASE + timedelta(seconds=index)
            replay_of = self.first_id if index in (4, 5, 6) else None
            run = Run(id=f"run-{index:06d}", automation_name=name, status=RunStatus(status),
                      trigger_type=trigger, trigger_data={"id": index}, created_at=created,
                      started_at=None if status == "pending" else created,
                      completed_at=created if status in ("completed", "failed") else None,
                      definition={}, replay_of=replay_of, expires_at=expires, version=3)
            self._put(run_to_item(tables.run, run, definition_ref=self.refs[name]))
            if index == 11:  # a finished 10-step (set-10) run for the detail call
                self.detail_id = run.id
                for step in range(10):
                    self._put(step_to_item(tables.step, run.id, Step(
                        index=step, name=f"s{step}", type="data", operator="set",
                        status=StepStatus.COMPLETED, started_at=created, completed_at=created,
                        attempt=1, output={"n": step}), expires))
            if index == 0:
                self.first_id = run.id
            if status == "pending":
                self.pending.append(run.id)
            for key in counter_keys(name, trigger):
                self.totals[key][status] += 1
            self.count += 1
        self._write_counters()

    def _write_counters(self) -> None:
        from chalicelib.adapters.dynamo_models import COUNTER_SK, status_attribute  # noqa: PLC0415

        model = self.repo.tables.counter
        for key, by_status in self.totals.items():
            self._put(model(key, COUNTER_SK, **{status_attribute(status): n
                                                for status, n in by_status.items()}))


def calls(seeder: Seeder) -> dict[str, tuple[str, str, Any]]:
    """name → (method, path, body) of every call measured."""
    since, until = (BASE + timedelta(seconds=50)).isoformat(), "2031-01-01T00:00:00+00:00"

    def runs(**params: Any) -> tuple[str, str, None]:
        return "GET", f"{RUNS}?{urlencode({'pageSize': 20, **params}, doseq=True)}", None

    listed = {
        "list": runs(),
        "list automationName": runs(automationName="set-3"),
        "list status": runs(status="completed"),
        "list status (rare: failed)": runs(status="failed"),
        "list status ×2 (pending, running)": runs(status=["pending", "running"]),
        "list triggerType": runs(triggerType="webhook"),
        "list automationName+status": runs(automationName="set-3", status="completed"),
        "list automationName+triggerType": runs(automationName="set-3", triggerType="cron"),
        "list status+triggerType": runs(status="completed", triggerType="manual"),
        "list automationName+status+triggerType": runs(
            automationName="set-10", status="failed", triggerType="webhook"),
        "list replayOf": runs(replayOf=seeder.first_id),
        "list replayOf+automationName+status": runs(
            replayOf=seeder.first_id, automationName="set-3", status="completed"),
        "list since": runs(since=since),
        "list until": runs(until=until),
        "list since+until+automationName+status": runs(
            since=since, until=until, automationName="set-1", status="completed"),
        "list page 3": runs(page=3),
    }
    return {
        **listed,
        "detail": ("GET", f"{RUNS}/{seeder.detail_id}", None),
        "cancel": ("POST", f"{RUNS}/{seeder.pending[-1]}/cancel", None),
        "replay": ("POST", f"{RUNS}/{seeder.detail_id}/replay", {"fromStep": "s5"}),
        "trigger": ("POST", "/api/automations/set-3/trigger", {"triggerData": {"id": 1}}),
    }


def measure(bench: Bench, method: str, path: str, body: Any) -> tuple[Usage, Any]:
    before = METER.snapshot()
    LOGS.capturing = sys.stderr.capturing = True
    try:
        if method == "GET":
            response = bench.client.http.get(path, headers=bench.headers)
        else:
            response = bench.client.http.post(path, headers=bench.headers,
                                              body=json.dumps(body) if body is not None else b"")
    finally:
        LOGS.capturing = sys.stderr.capturing = False
    assert response.status_code < 300, (path, response.status_code, response.body)
    return METER.snapshot().minus(before), json.loads(response.body or b"null")


def describe(usage: Usage) -> str:
    ops = usage.by_operation("dynamodb")
    text = " ".join(f"{_short(op)}{n}" for op, n in ops.items())
    sqs = usage.count("sqs")
    if sqs:
        text += f" SQS{sqs}"
    return f"{text} | {usage.read_units:g}R {usage.write_units:g}W"


def _short(operation: str) -> str:
    return {"Query": "Q", "GetItem": "G", "BatchGetItem": "BG", "PutItem": "P",
            "UpdateItem": "U", "TransactWriteItems": "TW", "DeleteItem": "D"}.get(operation,
                                                                                  operation)


def main() -> None:
    started = time.monotonic()
    table: dict[str, dict[int, Usage]] = defaultdict(dict)
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        try:
            seeder = Seeder(bench)
            for size in SIZES:
                seeder.seed_to(size)
                if size == SIZES[0]:  # once per process, not per call: the queue URL lookup
                    measure(bench, *calls(seeder)["trigger"])
                for name, (method, path, body) in calls(seeder).items():
                    usage, answer = measure(bench, method, path, body)
                    table[name][size] = usage
                    if name == "list":  # the cursor of the first page
                        cursor = answer["pagination"]["nextCursor"]
                        usage, _ = measure(bench, "GET", f"{RUNS}?" + urlencode(
                            {"pageSize": 20, "cursor": cursor}), None)
                        table["list next page (cursor)"][size] = usage
        finally:
            bench.close()
    report(table, time.monotonic() - started)
    results_path = ROOT / "bench" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["api"] = {name: {str(size): {"requests": dict(
        (op, n) for (_, op), n in sorted(u.requests.items())),
        "read_units": u.read_units, "write_units": u.write_units}
        for size, u in by_size.items()} for name, by_size in table.items()}
    results_path.write_text(json.dumps(results, indent=2) + "\n")


def report(table: dict[str, dict[int, Usage]], elapsed: float) -> None:
    def out(text: str = "") -> None:
        OUT.write(text + "\n")

    out("\nAPI calls: DynamoDB requests (Q Query, G GetItem, BG BatchGetItem, P PutItem, "
        "U UpdateItem), SQS requests, read | write units, per call")
    head = f"{'call':<42}" + "".join(f"{f'{size:,} runs':<30}" for size in SIZES) + "same"
    out(head)
    out("-" * len(head))
    for name, by_size in table.items():
        texts = [describe(by_size[size]) for size in SIZES]
        same_requests = len({tuple(sorted(by_size[s].requests.items())) for s in SIZES}) == 1
        same = "yes" if len(set(texts)) == 1 else ("requests" if same_requests else "NO")
        out(f"{name:<42}" + "".join(f"{text:<30}" for text in texts) + same)
    out(f"(seeded straight into moto; {elapsed:.0f} s)")


if __name__ == "__main__":
    main()
