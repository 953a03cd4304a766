"""Bulk replay and cancel on in-memory twins: claims across batches, limits, give-up."""
from __future__ import annotations

import pytest

from chalicelib.adapters.memory import MemoryBatchStore
from chalicelib.domain.model import RunFilter
from chalicelib.domain.statuses import RunStatus
from chalicelib.faults import Faults
from chalicelib.services import bulk
from chalicelib.services.trigger import start_run
from tests.support.stack import Clock, catalog_from, memory_container, pump

AUTOMATIONS = """
automations:
  - name: flaky
    trigger: { type: manual }
    actions:
      - { name: prep, type: data, operator: set, props: { value: 1 } }
      - name: boom
        type: flow
        operator: fail
        props: { message: "{{trigger.data.why}}" }
"""


class Hook(Faults):
    """Calls `then()` the first time `point` is reached (a second worker acting meanwhile)."""

    def __init__(self) -> None:
        self.point_name, self.then = None, None

    def point(self, name: str) -> None:
        if name == self.point_name and self.then is not None:
            then, self.then = self.then, None
            then()


@pytest.fixture
def deps(tmp_path):
    built = memory_container(catalog_from(tmp_path, AUTOMATIONS), batches=MemoryBatchStore(),
                             clock=Clock(tick_ms=1), faults=Hook())
    return built


def failed_runs(deps, count: int) -> list[str]:
    ids = [start_run(deps, deps.catalog.get("flaky"), "manual", {"why": f"n{n}"},
                     actor="test").id for n in range(count)]
    pump(deps)
    assert {deps.repo.get_run(i).status for i in ids} == {RunStatus.FAILED}
    return ids


def replay_request(**fields) -> bulk.BulkRequest:
    return bulk.BulkRequest(action="replay", filter=RunFilter(
        automation_name="flaky", statuses=(RunStatus.FAILED,)), limit=fields.pop("limit", 100),
        **fields)


def replays_of(deps, run_id: str) -> int:
    return deps.repo.count_runs(RunFilter(replay_of=run_id))


def test_a_run_claimed_by_one_batch_is_skipped_by_another_running_at_the_same_time(deps):
    ids = failed_runs(deps, 3)
    first, _ = bulk.start(deps, replay_request(), actor="a", is_admin=False)
    second, _ = bulk.start(deps, replay_request(), actor="b", is_admin=False)
    first_message = {"kind": "batch", "batchId": first.id}
    deps.step_queue.drain()
    # The first batch has claimed the newest run and not replayed it yet when the second
    # batch's worker goes through every run.
    deps.faults.point_name = "bulk.after_claim"
    deps.faults.then = lambda: bulk.process_message(deps, {"kind": "batch",
                                                           "batchId": second.id})
    bulk.process_message(deps, first_message)

    a, b = deps.batches.get(first.id), deps.batches.get(second.id)
    assert a.counts["replayed"] + b.counts["replayed"] == 3
    assert (a.counts["replayed"], b.counts["skipped"]) == (1, 1)
    assert all(replays_of(deps, run_id) == 1 for run_id in ids)


def test_a_failed_replay_gives_its_claim_back_for_a_later_batch(deps):
    ids = failed_runs(deps, 2)
    bad, _ = bulk.start(deps, replay_request(from_step="nope"), actor="a", is_admin=False)
    pump(deps)
    good, _ = bulk.start(deps, replay_request(), actor="a", is_admin=False)
    pump(deps)

    failed = deps.batches.get(bad.id)
    assert failed.counts["failed"] == 2 and failed.done
    assert {f["runId"] for f in failed.failures} == set(ids)
    assert "fromStep" in failed.failures[0]["message"]
    assert deps.batches.get(good.id).counts["replayed"] == 2


def test_limit_caps_the_runs_a_batch_takes_newest_first(deps):
    ids = failed_runs(deps, 5)
    deps.settings = deps.settings.__class__(**{**deps.settings.__dict__, "bulk_rate_per_s": 2})
    started, _ = bulk.start(deps, replay_request(limit=3), actor="a", is_admin=False)
    pump(deps)

    done = deps.batches.get(started.id)
    assert (done.matched, done.processed, done.counts["replayed"], done.pages) == (3, 3, 3, 2)
    assert [deps.repo.get_run(r).replay_of for r in done.run_ids] == list(reversed(ids))[:3]


def test_dry_run_answers_the_count_and_first_ids_and_writes_nothing(deps):
    ids = failed_runs(deps, 4)
    deps.step_queue.drain()

    answer = bulk.preview(deps, replay_request(limit=3), is_admin=False)

    assert (answer["matched"], answer["total"]) == (3, 4)
    assert answer["firstIds"] == list(reversed(ids))[:3]
    assert deps.step_queue.drain() == []


def test_a_batch_whose_messages_keep_crashing_ends_with_the_reason(deps):
    failed_runs(deps, 1)
    started, _ = bulk.start(deps, replay_request(), actor="a", is_admin=False)

    bulk.give_up(deps, {"kind": "batch", "batchId": started.id}, "crashed")

    stopped = deps.batches.get(started.id)
    assert stopped.done and stopped.error == "crashed" and stopped.processed == 0
    pump(deps)  # its queued message finds it done
    assert deps.batches.get(started.id).counts["replayed"] == 0


def test_trigger_data_override_needs_an_admin(deps):
    from chalicelib.domain.errors import Forbidden

    with pytest.raises(Forbidden):
        bulk.start(deps, replay_request(trigger_data={"why": "x"}, replaces_trigger_data=True),
                   actor="a", is_admin=False)
