"""RateLimiter contract: the in-memory twin, DynamoRateLimiter on moto and SqliteRateLimiter keep
the same token buckets, exactly under concurrent takes, at a constant request cost."""
from __future__ import annotations

import threading

import pytest

from chalicelib.adapters.dynamo_rate_limits import DynamoRateLimiter
from chalicelib.adapters.memory import MemoryRateLimiter
from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.adapters.sqlite_stores import SqliteRateLimiter
from chalicelib.domain.rate_limit import MICROS, Allowance

T0 = 1_800_000_000 * MICROS  # epoch µs
TEN_S = Allowance.per_minute(6, burst=3)  # a token every 10 s, 3 at once


@pytest.fixture(params=["memory", "dynamo", "sqlite"])
def limiter(request, tmp_path):
    """MemoryRateLimiter, DynamoRateLimiter on the template's runs table in moto (requests
    applied one at a time, as DynamoDB applies each atomically), or SqliteRateLimiter."""
    if request.param == "memory":
        return MemoryRateLimiter()
    if request.param == "sqlite":
        return SqliteRateLimiter(SqliteDatabase(tmp_path / "runs.db"))
    request.getfixturevalue("aws")
    request.getfixturevalue("serialised_moto")
    return DynamoRateLimiter(request.getfixturevalue("settings"))


def takes(limiter, n: int, at: int = T0, allowance: Allowance = TEN_S, key: str = "hook"):
    return [limiter.take(key, allowance, at) for _ in range(n)]


class TestRateLimiter:
    def test_a_full_bucket_admits_its_burst_then_refuses_until_the_next_token(self, limiter):
        verdicts = takes(limiter, 4)

        assert [v.admitted for v in verdicts] == [True, True, True, False]
        assert verdicts[3].retry_after_s == 10

    def test_retry_after_counts_down_to_the_next_token(self, limiter):
        takes(limiter, 3)

        assert limiter.take("hook", TEN_S, T0 + 4 * MICROS).retry_after_s == 6
        assert limiter.take("hook", TEN_S, T0 + 9_500_000).retry_after_s == 1  # rounded up
        assert limiter.take("hook", TEN_S, T0 + 10 * MICROS).admitted
        assert not limiter.take("hook", TEN_S, T0 + 10 * MICROS).admitted

    def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst(self, limiter):
        takes(limiter, 3)

        assert [v.admitted for v in takes(limiter, 2, T0 + 20 * MICROS)] == [True, True]
        assert not limiter.take("hook", TEN_S, T0 + 20 * MICROS).admitted
        idle = T0 + 3600 * MICROS  # an hour idle refills three tokens, not 360
        assert [v.admitted for v in takes(limiter, 4, idle)] == [True, True, True, False]

    def test_refusals_spend_nothing(self, limiter):
        takes(limiter, 3)
        for second in range(1, 10):
            assert not limiter.take("hook", TEN_S, T0 + second * MICROS).admitted

        assert limiter.take("hook", TEN_S, T0 + 10 * MICROS).admitted

    def test_buckets_are_separate_per_key(self, limiter):
        takes(limiter, 4, key="a")

        assert [v.admitted for v in takes(limiter, 3, key="b")] == [True, True, True]
        assert not limiter.take("a", TEN_S, T0).admitted

    def test_a_changed_limit_applies_to_the_stored_bucket(self, limiter):
        takes(limiter, 2)  # one token left of three

        assert not limiter.take("hook", Allowance.per_minute(6, burst=2), T0).admitted
        wider = Allowance.per_minute(6, burst=5)
        assert [v.admitted for v in takes(limiter, 4, allowance=wider)] == [
            True, True, True, False]

    def test_concurrent_takes_admit_exactly_the_burst(self, limiter):
        contenders, allowance = 12, Allowance.per_minute(1, burst=5)
        barrier = threading.Barrier(contenders)
        admitted: list[bool] = []
        lock = threading.Lock()

        def take() -> None:
            barrier.wait()
            verdict = limiter.take("hook", allowance, T0)
            with lock:
                admitted.append(verdict.admitted)

        threads = [threading.Thread(target=take) for _ in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(admitted) == [False] * 7 + [True] * 5
        assert not limiter.take("hook", allowance, T0).admitted


class TestDynamoRequestCost:
    """Each take is a constant number of UpdateItem requests, never a read or a scan."""

    @pytest.fixture
    def counted(self, aws, settings):
        limiter = DynamoRateLimiter(settings)
        calls: list[str] = []

        def count(model, **_):
            calls.append(model.name)

        limiter.client.meta.events.register("before-call.dynamodb", count)
        yield limiter, calls
        limiter.client.meta.events.unregister("before-call.dynamodb", count)

    def test_a_take_costs_one_request_from_a_full_bucket_and_two_otherwise(self, counted):
        limiter, calls = counted

        limiter.take("hook", TEN_S, T0)
        assert calls == ["UpdateItem"]
        calls.clear()
        limiter.take("hook", TEN_S, T0)
        assert calls == ["UpdateItem"] * 2
        calls.clear()
        limiter.take("hook", TEN_S, T0)
        limiter.take("hook", TEN_S, T0)  # refused by the first request's answer
        assert calls == ["UpdateItem"] * 3
