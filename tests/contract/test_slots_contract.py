"""Slots contract: the in-memory twin, DynamoSlots on moto and SqliteSlots count slots alike."""
from __future__ import annotations

import threading

import pytest

from chalicelib.adapters.dynamo_slots import DynamoSlots
from chalicelib.adapters.memory import MemorySlots
from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.adapters.sqlite_stores import SqliteSlots


@pytest.fixture(params=["memory", "dynamo", "sqlite"])
def slots(request, tmp_path):
    """MemorySlots, DynamoSlots on the template's runs table in moto (atomic requests), or
    SqliteSlots on a fresh database file."""
    if request.param == "memory":
        return MemorySlots()
    if request.param == "sqlite":
        return SqliteSlots(SqliteDatabase(tmp_path / "runs.db"))
    request.getfixturevalue("aws")
    return DynamoSlots(request.getfixturevalue("settings"))


class TestSlots:
    def test_acquire_succeeds_up_to_the_limit_and_then_refuses(self, slots):
        assert [slots.acquire("auto", f"r{i}", 2) for i in range(3)] == [True, True, False]

        assert slots.holders("auto") == {"r0", "r1"}

    def test_acquire_is_idempotent_per_run_even_when_full(self, slots):
        assert slots.acquire("auto", "r1", 1)

        assert slots.acquire("auto", "r1", 1)
        assert slots.holders("auto") == {"r1"}
        assert not slots.acquire("auto", "r2", 1)

    def test_release_frees_the_slot_for_the_next_run(self, slots):
        slots.acquire("auto", "r1", 1)

        slots.release("auto", "r1")

        assert slots.holders("auto") == set()
        assert slots.acquire("auto", "r2", 1)
        assert slots.holders("auto") == {"r2"}

    def test_release_is_idempotent(self, slots):
        slots.acquire("auto", "r1", 2)
        slots.acquire("auto", "r2", 2)

        slots.release("auto", "r1")
        slots.release("auto", "r1")

        assert slots.holders("auto") == {"r2"}

    def test_releasing_a_run_that_holds_nothing_changes_nothing(self, slots):
        slots.acquire("auto", "r1", 1)

        slots.release("auto", "stranger")
        slots.release("other-auto", "r1")

        assert slots.holders("auto") == {"r1"}
        assert slots.holders("other-auto") == set()
        assert not slots.acquire("auto", "r2", 1)

    def test_release_on_an_unknown_automation_is_harmless(self, slots):
        slots.release("never-used", "r1")

        assert slots.holders("never-used") == set()

    def test_automations_have_separate_slots(self, slots):
        assert slots.acquire("a", "r1", 1)

        assert slots.acquire("b", "r2", 1)
        assert slots.holders("a") == {"r1"} and slots.holders("b") == {"r2"}

    def test_a_lower_limit_refuses_new_runs_but_keeps_holders(self, slots):
        for run_id in ("r1", "r2", "r3"):
            slots.acquire("auto", run_id, 3)

        assert not slots.acquire("auto", "r4", 2)
        assert slots.acquire("auto", "r1", 2)  # already a holder
        assert slots.holders("auto") == {"r1", "r2", "r3"}

    def test_concurrent_acquires_never_exceed_the_limit(self, slots):
        contenders, limit = 12, 3
        barrier = threading.Barrier(contenders)
        granted: list[str] = []
        lock = threading.Lock()

        def take(run_id: str) -> None:
            barrier.wait()
            if slots.acquire("auto", run_id, limit):
                with lock:
                    granted.append(run_id)

        threads = [threading.Thread(target=take, args=(f"r{i}",)) for i in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(granted) == limit
        assert slots.holders("auto") == set(granted)

    def test_concurrent_acquire_and_release_keep_the_count_exact(self, slots):
        for run_id in ("r0", "r1"):
            slots.acquire("auto", run_id, 2)
        barrier = threading.Barrier(6)
        granted: list[str] = []

        def take(run_id: str) -> None:
            barrier.wait()
            if slots.acquire("auto", run_id, 2):
                granted.append(run_id)

        def give(run_id: str) -> None:
            barrier.wait()
            slots.release("auto", run_id)

        threads = [threading.Thread(target=give, args=("r0",))]
        threads += [threading.Thread(target=take, args=(f"n{i}",)) for i in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(granted) <= 1
        assert slots.holders("auto") == {"r1", *granted}
        assert len(slots.holders("auto")) <= 2
