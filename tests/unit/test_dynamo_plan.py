"""Which index partitions answer a list on DynamoDB, and how their entries are merged."""
from __future__ import annotations

import heapq

from chalicelib.adapters.dynamo_models import ACTIVE, STATUS_PARTITIONS
from chalicelib.adapters.dynamo_query import _once_each, _sort_key, choose_plan
from chalicelib.domain.model import RunFilter
from chalicelib.domain.statuses import RunStatus


def entry(run_id: str, created: str) -> dict:
    return {"pk": {"S": run_id}, "listSk": {"S": f"{created}#{run_id}"}}


def test_a_list_without_filters_reads_every_status_partition_once():
    plan = choose_plan(RunFilter())
    assert {(s.index, s.hash_value) for s in plan.streams} == {
        ("byStatus", partition) for partition in STATUS_PARTITIONS}
    assert all(not s.statuses and s.automation is None for s in plan.streams)


def test_a_list_by_automation_reads_its_status_partitions_and_its_active_entries():
    plan = choose_plan(RunFilter(automation_name="orders"))
    ended = {s.hash_value for s in plan.streams if s.index == "byAutomationStatus"}
    assert ended == {f"orders#{s.value}" for s in RunStatus
                     if s not in (RunStatus.PENDING, RunStatus.RUNNING)}
    (active,) = [s for s in plan.streams if s.index == "byStatus"]
    assert (active.hash_value, active.statuses, active.automation) == (ACTIVE, (), "orders")


def test_a_run_caught_between_two_partitions_is_listed_once():
    # The index lags its table: a run whose entry moves from "active" to "completed" may be
    # read in both partitions at once.
    active = [entry("b", "2026-01-02"), entry("a", "2026-01-01")]
    completed = [entry("c", "2026-01-03"), entry("b", "2026-01-02")]
    merged = heapq.merge(active, completed, key=_sort_key, reverse=True)
    assert [raw["pk"]["S"] for raw in _once_each(merged)] == ["c", "b", "a"]
