"""RunRepository contract: claiming steps and recording their results conditionally."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.errors import StepConflict
from chalicelib.domain.statuses import StepStatus

from tests.support.factories import BASE_TIME, make_run, make_step

LEASE = timedelta(seconds=30)


@pytest.fixture
def run(backend):
    run = make_run()
    backend.repo.create_run(run)
    return run


def _claim(backend, run, step, token, at=BASE_TIME):
    return backend.repo.claim_step(run.id, step, token=token, now=at, lease_until=at + LEASE)


class TestStepClaims:
    def test_absent_step_can_be_claimed(self, backend, run):
        claimed = _claim(backend, run, make_step(0, started_at=BASE_TIME), "t1")

        assert (claimed.status, claimed.claim_token, claimed.attempt) == (
            StepStatus.RUNNING, "t1", 1)
        assert claimed.started_at == BASE_TIME
        assert backend.repo.get_detail(run.id)[1] == [claimed]

    def test_pending_step_can_be_claimed(self, backend):
        run = make_run()
        backend.repo.create_run(run, [make_step(0)])

        assert _claim(backend, run, make_step(0), "t1").status == StepStatus.RUNNING

    def test_second_claim_conflicts_while_the_lease_is_live(self, backend, run):
        _claim(backend, run, make_step(0), "t1")

        with pytest.raises(StepConflict) as caught:
            _claim(backend, run, make_step(0), "t2", at=BASE_TIME + LEASE - timedelta(seconds=1))

        assert caught.value.status == "running"
        assert backend.repo.get_detail(run.id)[1][0].claim_token == "t1"

    def test_step_is_reclaimed_after_its_lease_expires(self, backend, run):
        first = _claim(backend, run, make_step(0, started_at=BASE_TIME), "t1")
        later = BASE_TIME + LEASE + timedelta(seconds=1)

        second = _claim(backend, run, make_step(0, started_at=later), "t2", at=later)

        assert (second.claim_token, second.attempt) == ("t2", 2)
        assert second.started_at == first.started_at  # the first start is kept

    @pytest.mark.parametrize("status", [StepStatus.COMPLETED, StepStatus.FAILED,
                                        StepStatus.SKIPPED])
    def test_finished_step_is_never_claimable(self, backend, run, status):
        claimed = _claim(backend, run, make_step(0), "t1")
        backend.repo.write_step(run.id, claimed.evolve(status=status),
                                expect=[StepStatus.RUNNING], token="t1")

        with pytest.raises(StepConflict) as caught:
            _claim(backend, run, make_step(0), "t2", at=BASE_TIME + timedelta(days=1))

        assert caught.value.status == status.value

    def test_waiting_retry_is_claimable_only_when_due(self, backend, run):
        claimed = _claim(backend, run, make_step(0), "t1")
        due = BASE_TIME + timedelta(minutes=5)
        attempt_log = ({"attempt": 1, "error": "HTTP 503"},)
        backend.repo.write_step(
            run.id, claimed.evolve(next_attempt_at=due, attempts=attempt_log),
            expect=[StepStatus.RUNNING], token="t1")

        with pytest.raises(StepConflict):
            _claim(backend, run, make_step(0), "t2", at=due - timedelta(seconds=1))
        retried = _claim(backend, run, make_step(0), "t3", at=due)

        assert (retried.attempt, retried.claim_token, retried.next_attempt_at) == (2, "t3", None)
        assert retried.attempts == attempt_log

    def test_claims_and_results_are_conditional_on_the_step_alone(self, backend):
        # As on DynamoDB (one item per write): the run is not re-read; the executor reads
        # the run's detail before it claims, and a run deleted meanwhile is never listed.
        claimed = backend.repo.claim_step("no-run-item", make_step(0), token="t1", now=BASE_TIME,
                                          lease_until=BASE_TIME + LEASE)
        done = backend.repo.write_step("no-run-item", claimed.evolve(status=StepStatus.COMPLETED),
                                       expect=[StepStatus.RUNNING], token="t1")

        assert (claimed.attempt, done.status) == (1, StepStatus.COMPLETED)

    def test_claim_records_the_given_step_fields(self, backend, run):
        step = make_step(3, name="fetchUser", type="http", operator="get")

        claimed = _claim(backend, run, step, "t1")

        assert (claimed.index, claimed.name, claimed.type, claimed.operator) == (
            3, "fetchUser", "http", "get")


class TestStepWrites:
    def test_result_is_written_with_the_claim_token(self, backend, run):
        claimed = _claim(backend, run, make_step(0), "t1")
        done = claimed.evolve(status=StepStatus.COMPLETED, completed_at=BASE_TIME,
                              output={"status": 200, "body": [1, 2.5, None, "x"]},
                              lease_until=None)  # a write ends the claim's lease

        assert backend.repo.write_step(run.id, claimed.evolve(
            status=StepStatus.COMPLETED, completed_at=BASE_TIME,
            output={"status": 200, "body": [1, 2.5, None, "x"]}),
            expect=[StepStatus.RUNNING], token="t1") == done
        assert backend.repo.get_detail(run.id)[1] == [done]

    def test_result_with_another_token_conflicts(self, backend, run):
        _claim(backend, run, make_step(0), "t1")

        with pytest.raises(StepConflict) as caught:
            backend.repo.write_step(run.id, make_step(0, status=StepStatus.COMPLETED),
                                    expect=[StepStatus.RUNNING], token="stolen")

        assert caught.value.status == "running"
        assert backend.repo.get_detail(run.id)[1][0].status == StepStatus.RUNNING

    def test_result_after_a_reclaim_loses_to_the_new_claim(self, backend, run):
        _claim(backend, run, make_step(0), "t1")
        later = BASE_TIME + LEASE * 2
        _claim(backend, run, make_step(0), "t2", at=later)

        with pytest.raises(StepConflict):
            backend.repo.write_step(run.id, make_step(0, status=StepStatus.COMPLETED),
                                    expect=[StepStatus.RUNNING], token="t1")

    def test_token_is_required_to_match_an_absent_step(self, backend, run):
        with pytest.raises(StepConflict) as caught:
            backend.repo.write_step(run.id, make_step(0), expect=[None, StepStatus.RUNNING],
                                    token="t1")

        assert caught.value.status is None

    def test_absent_step_is_written_when_absence_is_expected(self, backend, run):
        skipped = make_step(2, status=StepStatus.SKIPPED)

        backend.repo.write_step(run.id, skipped, expect=[None, StepStatus.PENDING])

        assert backend.repo.get_detail(run.id)[1] == [skipped]

    def test_unexpected_status_conflicts_with_the_stored_status(self, backend, run):
        backend.repo.write_step(run.id, make_step(0, status=StepStatus.SKIPPED), expect=[None])

        with pytest.raises(StepConflict) as caught:
            backend.repo.write_step(run.id, make_step(0), expect=[None, StepStatus.PENDING])

        assert caught.value.status == "skipped"

    def test_nothing_expected_always_conflicts(self, backend, run):
        with pytest.raises(StepConflict):
            backend.repo.write_step(run.id, make_step(0), expect=[])

    def test_write_clears_the_lease_so_a_running_step_can_be_reclaimed(self, backend, run):
        claimed = _claim(backend, run, make_step(0), "t1")
        backend.repo.write_step(run.id, claimed.evolve(attempts=({"attempt": 1},)),
                                expect=[StepStatus.RUNNING], token="t1")

        again = _claim(backend, run, make_step(0), "t2")  # same instant: no lease left

        assert again.attempt == 2
