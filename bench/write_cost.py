"""Write units of one 10-step run, on moto: `python -m bench.write_cost`.

moto does not report real consumed capacity, so write units are computed from the item
images the table's stream records for each write, by DynamoDB's rules: a write costs
ceil(KB) of the larger of the item before and after (x2 inside a transaction), and each
global secondary index the write touches costs ceil(KB) of the index entry per entry put or
deleted (a changed index key is a delete plus a put; index entries add 100 bytes).
Counter upkeep from the stream is shown alone and amortised over a busy batch. Prints
figures only.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from datetime import timedelta
from decimal import Decimal

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(_name, "bench")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib.adapters.counters import CounterWriter, StreamPoller  # noqa: E402
from chalicelib.adapters.dynamo_models import INDEXES, PROJECTED  # noqa: E402
from chalicelib.adapters.dynamo_repository import DynamoRunRepository  # noqa: E402
from chalicelib.domain.clock import utcnow  # noqa: E402
from chalicelib.domain.model import Event, Run, Step  # noqa: E402
from chalicelib.domain.statuses import RunStatus, StepStatus  # noqa: E402
from chalicelib.local.resources import create_resources  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402

STEPS = 10
KB = 1024
INDEX_ENTRY_OVERHEAD = 100


def value_size(value: dict) -> int:
    """Bytes of one attribute value, as DynamoDB sizes items."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = Decimal(inner).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(key.encode()) + value_size(v) for key, v in inner.items())
    return len(str(inner))


def item_size(image: dict | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (image or {}).items())


def _index_entry(image: dict | None, hash_attr: str) -> dict | None:
    if not image or hash_attr not in image or "listSk" not in image:
        return None
    names = ("pk", "sk", hash_attr, "listSk", *PROJECTED)
    return {name: image[name] for name in names if name in image}


def index_units(old: dict | None, new: dict | None) -> int:
    """Write units the list indexes consume for one item change."""
    units = 0
    for hash_attr in INDEXES.values():
        before, after = _index_entry(old, hash_attr), _index_entry(new, hash_attr)
        if before == after:
            continue
        keys_moved = before and after and (
            before[hash_attr] != after[hash_attr] or before["listSk"] != after["listSk"])
        for entry in ((before, after) if keys_moved or not (before and after) else (after,)):
            if entry:
                units += math.ceil((item_size(entry) + INDEX_ENTRY_OVERHEAD) / KB)
    return units


def item_changes(records: list[dict]) -> list[tuple[dict | None, dict | None]]:
    """(old, new) image per item written; moto records an update of a missing item as two
    records (a keys-only insert, then the update), DynamoDB as one, so they are merged."""
    changes: dict[tuple[str, str], list] = {}
    for record in records:
        change = record["dynamodb"]
        key = (change["Keys"]["pk"]["S"], change["Keys"]["sk"]["S"])
        if key in changes:
            changes[key][1] = change.get("NewImage")
        else:
            changes[key] = [change.get("OldImage"), change.get("NewImage")]
    return [(old, new) for old, new in changes.values()]


def write_units(records: list[dict], transactional: bool) -> tuple[int, int]:
    """(table units, index units) of the item changes in `records`."""
    table = index = 0
    for old, new in item_changes(records):
        table += math.ceil(max(item_size(old), item_size(new)) / KB) * (2 if transactional else 1)
        index += index_units(old, new)
    return table, index


class Meter:
    """Runs operations and prices each one from the stream records it produced."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.repo, self.poller = DynamoRunRepository(settings), StreamPoller(settings)
        self.calls: Counter[str] = Counter()
        self.rows: list[tuple[str, str, int, int]] = []
        self.run_records: list[dict] = []
        self.repo.client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: self.calls.update([model.name]))

    def measure(self, label: str, operation) -> tuple[int, int]:
        self.calls.clear()
        operation()
        calls = dict(self.calls)  # before reading the stream (which describes the table)
        records = [r for batch in self.poller.fetch().values() for r in batch]
        self.run_records += records
        units = write_units(records, transactional="TransactWriteItems" in calls)
        self.rows.append((label, "+".join(sorted(calls)), *units))
        return units


def _run(definition_actions: int = STEPS) -> Run:
    actions = [{"name": f"step{i}", "type": "http", "operator": "post",
                "props": {"url": f"https://api.example.com/v1/items/{{{{trigger.data.id}}}}/{i}",
                          "body": {"source": "automation", "index": i}},
                "timeout": 10000, "retry": {"maxAttempts": 3}} for i in range(definition_actions)]
    return Run(id="6f1c7a52-3d5e-4d3b-9a57-1f2e3d4c5b6a", automation_name="order-sync",
               status=RunStatus.PENDING, trigger_type="webhook", created_at=utcnow(),
               trigger_data={"method": "POST", "path": "/orders", "body": {"id": 1234,
                                                                          "total": 99.5}},
               definition={"name": "order-sync", "actions": actions},
               expires_at=int(utcnow().timestamp()) + 30 * 86400)


def drive_run(meter: Meter, run: Run) -> None:
    """create → running → 10 × (claim, record) → completed."""
    repo, now = meter.repo, utcnow()
    meter.measure("create run", lambda: repo.create_run(run))
    stored = repo.get_run(run.id)
    event = Event(at=now, type="transition", from_status="pending", to_status="running",
                  actor="executor")
    meter.measure("pending → running", lambda: repo.update_run(
        stored.evolve(status=RunStatus.RUNNING, started_at=now),
        expected_status=RunStatus.PENDING, event=event))
    for index in range(STEPS):
        step = Step(index=index, name=f"step{index}", type="http", operator="post",
                    started_at=now)
        token = f"token-{index}"
        claimed = []
        meter.measure(f"claim step {index}", lambda: claimed.append(repo.claim_step(
            run.id, step, token=token, now=now, lease_until=now + timedelta(seconds=30))))
        output = {"status": 200, "headers": {"content-type": "application/json"},
                  "body": {"id": 1234, "synced": True, "items": list(range(20))}}
        done = claimed[0].evolve(status=StepStatus.COMPLETED, completed_at=now, output=output,
                                 attempts=({"attempt": 1, "startedAt": "x", "completedAt": "y",
                                            "error": None},))
        meter.measure(f"record step {index}", lambda: repo.write_step(
            run.id, done, expect=[StepStatus.RUNNING], token=token))
    running = repo.get_run(run.id)
    meter.measure("running → completed", lambda: repo.update_run(
        running.evolve(status=RunStatus.COMPLETED, completed_at=now),
        expected_status=RunStatus.RUNNING,
        event=Event(at=now, type="transition", from_status="running", to_status="completed")))


def counter_units(meter: Meter, records: list[dict], checkpoint: str) -> int:
    """Write units of applying `records` to the counters (transactions, so x2)."""
    CounterWriter(meter.settings).apply(records, checkpoint)
    written = [r for batch in meter.poller.fetch().values() for r in batch]
    table, index = write_units(written, transactional=True)
    return table + index


def busy_batch_units(meter: Meter, runs: int) -> int:
    """Counter write units for a batch holding `runs` runs' transitions (3 records each)."""
    repo, now = meter.repo, utcnow()
    for number in range(runs):
        run = _run(1).evolve(id=f"busy-{number:04d}")
        repo.create_run(run)
        stored = repo.update_run(run.evolve(status=RunStatus.RUNNING, version=1),
                                 expected_status=RunStatus.PENDING)
        repo.update_run(stored.evolve(status=RunStatus.COMPLETED, completed_at=now),
                        expected_status=RunStatus.RUNNING)
    records = [r for batch in meter.poller.fetch().values() for r in batch]
    return counter_units(meter, records, "bench-busy")


def report(meter: Meter, counters_alone: int, busy_units: int, busy_runs: int) -> None:
    print(f"{'operation':<22} {'requests':<20} {'table WCU':>9} {'index WCU':>9}")
    for label, calls, table, index in meter.rows:
        print(f"{label:<22} {calls:<20} {table:>9} {index:>9}")
    total = sum(table + index for *_, table, index in meter.rows)
    floor = sum(table + index for label, _, table, index in meter.rows
                if label.startswith(("claim", "record")))
    per_run_busy = busy_units / busy_runs
    print()
    print(f"run writes: {total} WCU = {total / STEPS:.2f} per step "
          f"(claim + record alone: {floor / STEPS:.2f} per step)")
    print(f"+ stream counters, this run's batch alone: {counters_alone} WCU → "
          f"{(total + counters_alone) / STEPS:.2f} per step")
    print(f"+ stream counters amortised over a batch of {busy_runs} runs: "
          f"{per_run_busy:.2f} WCU per run → {(total + per_run_busy) / STEPS:.2f} per step")
    transitions = sum(1 for label, *_ in meter.rows if not label.startswith(("claim", "record")))
    in_transaction = sum(table + 4 * 2 for label, _, table, _ in meter.rows
                         if not label.startswith(("claim", "record")))
    print(f"(counters inside each of the {transitions} run writes instead: about "
          f"{in_transaction} extra WCU → {(total + in_transaction) / STEPS:.2f} per step)")


def main() -> None:
    with mock_aws():
        create_resources(boto3.Session(region_name="us-east-1"))
        meter = Meter(Settings.from_env())
        # Steady state: the definition item is written once per version and process (its
        # first run of a version also pays that item's size once).
        warm = _run().evolve(id="warm-up-run")
        first_units = meter.measure("first run of a version", lambda: meter.repo.create_run(warm))
        meter.rows.pop()
        meter.run_records.clear()
        print(f"(first run of a definition version in a process: create costs "
              f"{sum(first_units)} WCU once)\n")
        drive_run(meter, _run())
        run_records = list(meter.run_records)
        counters_alone = counter_units(meter, run_records, "bench-alone")
        busy_runs = 33
        report(meter, counters_alone, busy_batch_units(meter, busy_runs), busy_runs)


if __name__ == "__main__":
    main()
