"""Stopping the local stack (SQLite backend) mid-run and starting it again, over real HTTP:
nothing is lost, parked runs wake, failed runs replay, interrupted steps run again."""
from __future__ import annotations

import signal
import time

import pytest

from .stack_process import running_stack

pytestmark = pytest.mark.integration

TERMINAL = {"completed", "completed-with-errors", "failed", "timed-out", "exhausted",
            "cancelled"}

AUTOMATIONS = """
automations:
  - name: three-sets
    trigger: { type: manual }
    actions:
      - { name: a, type: data, operator: set, props: { value: { n: "{{trigger.data.n}}" } } }
      - { name: b, type: data, operator: set, props: { value: "{{steps.a.n}}" } }
      - { name: c, type: data, operator: set, props: { value: { done: true } } }
  - name: parked
    trigger: { type: manual }
    actions:
      - { name: before, type: data, operator: set, props: { value: 1 } }
      - { name: pause, type: delay, operator: wait, props: { ms: 5000 } }
      - { name: after, type: data, operator: set, props: { value: 2 } }
  - name: flaky
    trigger: { type: manual }
    actions:
      - { name: call, type: http, operator: get, props: { url: "{{secrets.SINK}}/flaky" } }
  - name: slow
    trigger: { type: manual }
    retry: { maxAttempts: 3, delayMs: 100 }
    actions:
      - name: call
        type: http
        operator: get
        props: { url: "{{secrets.SINK}}/slow" }
        timeout: 20000
      - { name: next, type: data, operator: set, props: { value: "{{steps.call.body}}" } }
"""


def _trigger(stack, name: str, data: dict | None = None) -> str:
    started = stack.post(f"/api/automations/{name}/trigger", {"triggerData": data or {}})
    assert started.status == 202, started.body
    return started.body["id"]


def _run(stack, run_id: str, predicate, timeout: float = 30):
    return stack.wait_for(f"/api/automations/runs/{run_id}",
                          lambda r: r.status == 200 and predicate(r.body), timeout=timeout).body


def _listing(stack) -> tuple[int, set[str], dict[str, int]]:
    page = stack.get("/api/automations/runs?pageSize=100").body
    totals = {status: stack.get(f"/api/automations/runs?status={status}").body[
        "pagination"]["total"] for status in ("completed", "failed")}
    return page["pagination"]["total"], {run["id"] for run in page["runs"]}, totals


def _until(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_restart_loses_nothing_and_resumes_every_run(tmp_path, http_sink):
    folder = tmp_path / "automations"
    folder.mkdir()
    (folder / "restart.yaml").write_text(AUTOMATIONS)
    env = {"AUTOMATIONS_DIR": str(folder), "RUNS_DB": str(tmp_path / "runs.db"),
           "RUNS_BACKEND": "sqlite", "RUNS_SECRET_SINK": http_sink.url}
    http_sink.fail("/flaky", status=500, times=1)
    http_sink.delay("/slow", 30, times=1)  # the first attempt hangs until the stop
    http_sink.respond("/slow", body={"ok": True})

    with running_stack(env) as first:
        done = [_trigger(first, "three-sets", {"n": n}) for n in range(5)]
        failed = _trigger(first, "flaky")
        for run_id in [*done, failed]:
            _run(first, run_id, lambda run: run["status"] in TERMINAL)
        parked = _trigger(first, "parked")
        _run(first, parked, lambda run: len(run["steps"]) > 1
             and run["steps"][1]["status"] == "running")
        slow = _trigger(first, "slow")
        _until(lambda: http_sink.calls("/slow") == 1)
        before = _listing(first)

        stopping = time.monotonic()
        assert first.stop(signal.SIGTERM) == 0, first.output
        stop_s = time.monotonic() - stopping

    assert stop_s <= 5.0, first.output
    assert f"left in flight: run {slow}" in first.output
    assert "Traceback" not in first.output
    assert before[2] == {"completed": 5, "failed": 1}

    with running_stack(env) as second:
        assert _listing(second)[:2] == before[:2]  # every run listed, same total

        woke = _run(second, parked, lambda run: run["status"] in TERMINAL)
        assert woke["status"] == "completed"
        assert [step["status"] for step in woke["steps"]] == ["completed"] * 3

        resumed = _run(second, slow, lambda run: run["status"] in TERMINAL)
        assert resumed["status"] == "completed", resumed
        call = resumed["steps"][0]
        assert [a["errorType"] for a in call["attempts"]] == ["Interrupted", None]
        assert resumed["steps"][1]["output"] == {"ok": True}

        replay = second.post(f"/api/automations/runs/{failed}/replay", {})
        assert replay.status == 202, replay.body
        replayed = _run(second, replay.body["id"], lambda run: run["status"] in TERMINAL)
        assert replayed["status"] == "completed"
        assert replayed["replayOf"] == failed

        total, ids, totals = _listing(second)
        assert total == before[0] + 1 and before[1] <= ids
        assert totals == {"completed": 8, "failed": 1}
        assert f"interrupted step(s) run again ({slow} step call)" in second.output


def test_ctrl_c_during_a_wait_keeps_the_run_and_says_so(tmp_path):
    folder = tmp_path / "automations"
    folder.mkdir()
    (folder / "restart.yaml").write_text(AUTOMATIONS)
    env = {"AUTOMATIONS_DIR": str(folder), "RUNS_DB": str(tmp_path / "runs.db"),
           "RUNS_BACKEND": "sqlite", "RUNS_SECRET_SINK": "http://127.0.0.1:9"}

    with running_stack(env) as first:
        parked = _trigger(first, "parked")
        _run(first, parked, lambda run: len(run["steps"]) > 1
             and run["steps"][1]["status"] == "running")
        stopping = time.monotonic()
        assert first.stop(signal.SIGINT) == 0, first.output
        assert time.monotonic() - stopping <= 5.0, first.output
    assert "1 step message(s) (delays, retries, queued steps) kept in" in first.output

    with running_stack(env) as second:
        assert "1 step message(s) (delays, retries, queued steps) delivered when due" in (
            second.output)
        woke = _run(second, parked, lambda run: run["status"] in TERMINAL)
        assert woke["status"] == "completed"
