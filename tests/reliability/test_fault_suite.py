"""The fault suite: seeded simulations of a few hundred runs (tests/support/fault_sim.py)
under crashes at every named point of the executor, admission and follow-ups, duplicate and
reordered delivery, throttled repository, marker, slot and queue calls and lost answers;
after draining, every invariant of issue 11 must hold. `make soak` runs thousands.

Environment: FAULT_SEEDS (comma-separated) and FAULT_RUNS (runs per seed) override the
defaults; a failure names its seed, and `FAULT_SEEDS=<seed>` replays its fault plan (run ids
are random, so the interleaving may differ between replays).
"""
from __future__ import annotations

import os

import pytest

from chalicelib.adapters.counters import StreamPoller
from chalicelib.adapters.dynamo_markers import DynamoMarkers
from chalicelib.adapters.dynamo_repository import DynamoRunRepository
from chalicelib.adapters.dynamo_slots import DynamoSlots
from tests.support.fault_sim import FaultSim, SimClock

SEEDS = [int(s) for s in os.environ.get("FAULT_SEEDS", "11,12,13").split(",") if s]
RUNS = int(os.environ.get("FAULT_RUNS", "100"))
# Every point a fault plan can crash at, and the port calls it throttles or loses.
CRASH_POINTS = {
    "admission.after_create", "admission.after_release", "executor.after_begin",
    "executor.before_claim", "executor.after_claim", "executor.after_action",
    "executor.after_record", "executor.before_wake_up", "lifecycle.before_final_write",
    "lifecycle.after_final_write", "lifecycle.after_release",
}


@pytest.fixture(autouse=True)
def quiet_metrics(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")


def _report(sim: FaultSim, figures) -> str:
    return (f"seed {sim.seed} ({sim.runs_wanted} runs; replay: FAULT_SEEDS={sim.seed} "
            f"FAULT_RUNS={sim.runs_wanted} .venv/bin/python -m pytest -q "
            f"tests/reliability/test_fault_suite.py) figures {dict(sorted(figures.items()))}")


@pytest.mark.parametrize("seed", SEEDS)
def test_every_invariant_holds_after_faults_on_the_in_memory_twins(seed, tmp_path):
    sim = FaultSim(seed, RUNS, tmp_path)
    figures = sim.run()
    violations = sim.violations()
    assert not violations, f"{_report(sim, figures)}\n" + "\n".join(violations[:30])
    print(_report(sim, figures))
    assert figures["fault:crash"] and figures["fault:throttle"] and figures["fault:lost"]


def test_the_faults_reach_every_crash_point_and_every_port(tmp_path):
    reached: set[str] = set()
    injected: set[str] = set()
    for seed in SEEDS:  # until every point was reached (one seed nearly always does it)
        sim = FaultSim(seed, RUNS, tmp_path)
        sim.run()
        reached |= {name for name, count in sim.plan.reached.items() if count}
        injected |= {key.split(":", 1)[1] for key in sim.plan.injected if ":" in key}
        if CRASH_POINTS <= reached:
            break
    assert CRASH_POINTS <= reached, CRASH_POINTS - reached
    for port in ("repo.", "markers.", "slots.", "step_queue.", "exhausted_queue."):
        assert any(name.startswith(port) for name in reached), port
    for port in ("repo.", "markers.", "step_queue."):  # slots and the exhausted queue see
        assert any(name.startswith(port) for name in injected), port  # too few calls a seed


def test_every_invariant_holds_after_faults_on_dynamodb(aws, settings, tmp_path):
    sim = FaultSim(SEEDS[0], 12, tmp_path, clock=(clock := SimClock()), ports={
        "repo": DynamoRunRepository(settings, clock=clock.epoch),
        "markers": DynamoMarkers(settings, clock=clock.epoch),
        "slots": DynamoSlots(settings),
    }, settle=StreamPoller(settings).drain)
    figures = sim.run()
    violations = sim.violations()
    assert not violations, f"{_report(sim, figures)}\n" + "\n".join(violations[:30])
    assert figures["accepted"] + figures["triggerFailed"] == 12 and figures["accepted"]
