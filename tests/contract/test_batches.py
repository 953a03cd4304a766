"""BatchStore contract: the memory twin, DynamoDB on moto and SQLite behave alike."""
from __future__ import annotations

import threading

import pytest

from chalicelib.adapters.dynamo_batches import DynamoBatchStore
from chalicelib.adapters.memory import MemoryBatchStore
from chalicelib.adapters.sqlite_batches import SqliteBatchStore
from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.domain.batches import Batch, BatchNotFound, BatchPage, StaleBatch
from chalicelib.domain.errors import AlreadyExists

from tests.contract.test_request_cost import counted_requests
from tests.support.factories import BASE_TIME


@pytest.fixture(params=["memory", "dynamo", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        return MemoryBatchStore()
    if request.param == "sqlite":
        return SqliteBatchStore(SqliteDatabase(tmp_path / "runs.db"))
    request.getfixturevalue("aws")
    request.getfixturevalue("serialised_moto")
    return DynamoBatchStore(request.getfixturevalue("settings"))


def make_batch(batch_id: str = "b1", **overrides) -> Batch:
    fields = dict(id=batch_id, action="replay",
                  filter={"automationName": "sync", "status": ["failed"]},
                  options={"fromStep": None, "again": False}, actor="token:t1",
                  created_at=BASE_TIME, matched=3, limit=1000)
    return Batch(**{**fields, **overrides})


class TestBatchStore:
    def test_a_created_batch_reads_back_with_every_field(self, store):
        store.create(make_batch())

        got = store.get("b1")

        assert got == make_batch()
        assert got.counts == {"replayed": 0, "cancelled": 0, "skipped": 0, "failed": 0}

    def test_unknown_batch_is_not_found(self, store):
        with pytest.raises(BatchNotFound):
            store.get("nope")

    def test_creating_an_existing_batch_is_refused(self, store):
        store.create(make_batch())
        with pytest.raises(AlreadyExists):
            store.create(make_batch(matched=9))
        assert store.get("b1").matched == 3

    def test_advance_stores_progress_and_pages_in_order(self, store):
        batch = store.create(make_batch()) or store.get("b1")
        first = batch.evolve(processed=2, cursor="k2", pages=1,
                             counts={**batch.counts, "replayed": 1, "failed": 1})
        store.advance(first, expected_version=0, page=BatchPage(
            0, run_ids=("n1",), failures=({"runId": "r2", "message": "boom"},)))
        second = store.get("b1").evolve(processed=3, cursor="k3", pages=2, done=True,
                                        counts={**first.counts, "replayed": 2})
        answered = store.advance(second, expected_version=1,
                                 page=BatchPage(1, run_ids=("n3",)))

        got = store.get("b1")
        assert got.version == 2 and answered.version == 2
        assert got.run_ids == ("n1", "n3") == answered.run_ids
        assert got.failures == ({"runId": "r2", "message": "boom"},)
        assert (got.processed, got.cursor, got.pages, got.done) == (3, "k3", 2, True)
        assert got.counts["replayed"] == 2 and got.counts["failed"] == 1

    def test_advance_without_a_page_keeps_the_pages(self, store):
        store.create(make_batch())
        store.advance(store.get("b1").evolve(pages=1), expected_version=0,
                      page=BatchPage(0, run_ids=("n1",)))
        store.advance(store.get("b1").evolve(processed=5, counts={"skipped": 5}),
                      expected_version=1)

        got = store.get("b1")
        assert got.run_ids == ("n1",) and got.processed == 5 and got.counts == {"skipped": 5}

    def test_advance_from_a_stale_version_is_refused_and_changes_nothing(self, store):
        store.create(make_batch())
        store.advance(store.get("b1").evolve(processed=1), expected_version=0)

        with pytest.raises(StaleBatch):
            store.advance(make_batch(processed=7), expected_version=0,
                          page=BatchPage(0, run_ids=("lost",)))

        got = store.get("b1")
        assert got.processed == 1 and got.run_ids == ()

    def test_concurrent_advances_from_one_version_have_one_winner(self, store):
        store.create(make_batch())
        batch = store.get("b1")
        barrier, wins, losses = threading.Barrier(4), [], []

        def advance(n: int) -> None:
            barrier.wait()
            try:
                store.advance(batch.evolve(processed=n), expected_version=0,
                              page=BatchPage(0, run_ids=(f"n{n}",)))
                wins.append(n)
            except StaleBatch:
                losses.append(n)

        threads = [threading.Thread(target=advance, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(wins) == 1 and len(losses) == 3
        got = store.get("b1")
        assert got.processed == wins[0] and got.run_ids == (f"n{wins[0]}",)


def test_dynamo_batch_reads_one_query_whatever_its_pages(aws, settings):
    store = DynamoBatchStore(settings)
    store.create(make_batch())
    batch = store.get("b1")
    for index in range(40):
        batch = store.advance(batch.evolve(pages=index + 1), expected_version=batch.version,
                              page=BatchPage(index, run_ids=tuple(f"r{index}-{n}"
                                                                  for n in range(25))))
    with counted_requests(store.client) as calls:
        got = store.get("b1")

    assert len(got.run_ids) == 1000
    assert calls == {"Query": 1}
