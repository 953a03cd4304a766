"""SQLite store timings at 1,000 and 100,000 runs: list (page of 20 + exact total, per
filter), detail, step claim + result, and a total by counters vs COUNT over an index.

    .venv/bin/python -m bench.sqlite_store            # sizes 1000 and 100000
    BENCH_SIZES=1000 .venv/bin/python -m bench.sqlite_store

Each database is a fresh file in a temporary folder, filled in bulk (bench/bulk.py: the rows
`create_run` writes, count triggers included, 20,000 runs per transaction, the indexes built
once afterwards) with runs of 4 automations x 3 trigger types across every status, 3 steps
each for 1 in 50.
Figures are in-process milliseconds (no HTTP): p50 and p95 of `REPEAT` calls each.
"""
from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .bulk import bulk_insert
from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.adapters.sqlite_repository import SqliteRunRepository
from chalicelib.domain.model import Run, RunFilter, Step
from chalicelib.domain.statuses import RunStatus, StepStatus
from chalicelib.services.runs import RunQuery, list_runs

REPEAT = int(os.environ.get("BENCH_REPEAT", "200"))
AUTOMATIONS = ("orders", "emails", "reports", "sync")
TRIGGERS = ("manual", "webhook", "cron")
STATUSES = tuple(RunStatus)
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFINITION = {"name": "bench", "actions": [{"name": f"s{i}", "type": "data", "operator": "set",
                                            "props": {"value": i}} for i in range(3)]}


def _run(index: int) -> Run:
    return Run(id=str(uuid.uuid4()), automation_name=AUTOMATIONS[index % 4],
               status=STATUSES[(index // 4) % len(STATUSES)], trigger_type=TRIGGERS[index % 3],
               trigger_data={"order": index, "items": ["a", "b"]},
               created_at=START + timedelta(milliseconds=37 * index), definition=DEFINITION)


def seed(repo: SqliteRunRepository, count: int) -> list[str]:
    """`count` runs inserted in bulk (bench/bulk.py: the rows `create_run` writes, 20,000 per
    transaction, indexes rebuilt afterwards): one `create_run` per run took minutes."""
    ids: list[str] = []

    def runs():
        for index in range(count):
            run = _run(index)
            ids.append(run.id)
            yield run, ([Step(index=i, name=f"s{i}", type="data", operator="set",
                              status=StepStatus.COMPLETED, output={"value": i})
                         for i in range(3)] if index % 50 == 0 else [])

    bulk_insert(repo, repo.db.connection(), runs())
    return ids


def timed(call, repeat: int = REPEAT) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def bench(count: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        db = SqliteDatabase(Path(folder) / "runs.db")
        repo = SqliteRunRepository(db)
        started = time.perf_counter()
        ids = seed(repo, count)
        seeded_s = time.perf_counter() - started
        middle = START + timedelta(milliseconds=37 * count // 2)
        filters = {
            "none": RunFilter(),
            "automation": RunFilter(automation_name="orders"),
            "status": RunFilter(statuses=(RunStatus.COMPLETED,)),
            "two statuses": RunFilter(statuses=(RunStatus.FAILED, RunStatus.EXHAUSTED)),
            "automation+status": RunFilter(automation_name="emails",
                                           statuses=(RunStatus.RUNNING,)),
            "trigger": RunFilter(trigger_type="cron"),
            "automation+trigger+status": RunFilter(
                automation_name="sync", trigger_type="webhook", statuses=(RunStatus.PENDING,)),
            "since (half)": RunFilter(since=middle),
            "until (half)": RunFilter(until=middle),
        }
        rows = [(f"seed {count} runs (s, total)", seeded_s, seeded_s)]
        for name, filt in filters.items():
            rows.append((f"list p1 {name}", *timed(lambda: list_runs(repo, RunQuery(filt)))))
        rows.append(("list page 10 (none)",
                     *timed(lambda: list_runs(repo, RunQuery(RunFilter(), page=10)))))
        rows.append(("total by counters (none)", *timed(lambda: repo.count_runs(RunFilter()))))
        rows.append(("total by COUNT(*) (none)", *timed(
            lambda: db.read("SELECT COUNT(*) FROM runs INDEXED BY runs_by_status"))))
        rows.append(("total by COUNT(*) (status)", *timed(
            lambda: db.read("SELECT COUNT(*) FROM runs WHERE status = 'completed'"))))
        rows.append(("detail", *timed(lambda: repo.get_detail(random.choice(ids)))))
        claim_run = _run(count + 1)
        repo.create_run(claim_run.evolve(status=RunStatus.RUNNING))
        indexes = iter(range(10 ** 6))

        def claim_and_record() -> None:
            now = datetime.now(timezone.utc)
            step = Step(index=next(indexes), name="s", type="data", operator="set")
            claimed = repo.claim_step(claim_run.id, step, token="t", now=now,
                                      lease_until=now + timedelta(seconds=30))
            repo.write_step(claim_run.id, claimed.evolve(status=StepStatus.COMPLETED,
                                                         completed_at=now, output={"ok": True}),
                            expect=[StepStatus.RUNNING], token="t")

        rows.append(("claim + result", *timed(claim_and_record)))
        db.close()
    return rows


def main() -> None:
    sizes = [int(size) for size in os.environ.get("BENCH_SIZES", "1000,100000").split(",")]
    print(f"SQLite store ({time.strftime('%Y-%m-%d')}), in-process, {REPEAT} calls each: "
          f"p50 / p95 ms (load average at start {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores)")
    results = {size: bench(size) for size in sizes}
    header = "".join(f"{f'{size:,} runs':>22}" for size in sizes)
    print(f"{'':32}{header}")
    for position, (name, _, _) in enumerate(results[sizes[0]]):
        cells = "".join(f"{results[size][position][1]:>11.2f} /{results[size][position][2]:>8.2f}"
                        for size in sizes)
        print(f"{name:32}{cells}")


if __name__ == "__main__":
    main()
