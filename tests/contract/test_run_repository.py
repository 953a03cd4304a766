"""RunRepository contract: storing, reading and transitioning runs (memory twin and DynamoDB)."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chalicelib.domain.errors import AlreadyExists, InvalidTransition, RunNotFound, StaleRun
from chalicelib.domain.model import Event
from chalicelib.domain.statuses import RunStatus, StepStatus

from tests.support.factories import BASE_TIME, make_run, make_step
from tests.support.transitions import LEGAL, PAIRS, pair_id


def _start(backend, run):
    """Move a pending run to running, as the executor does at admission."""
    started, event = run.evolve(version=backend.repo.get_run(run.id).version).transition(
        RunStatus.RUNNING, at=run.created_at + timedelta(seconds=1), actor="executor")
    return backend.repo.update_run(started, expected_status=RunStatus.PENDING, event=event)


class TestRunRepository:
    def test_created_run_reads_back_with_every_field(self, backend):
        run = make_run(replay_of="original-id", resume_from=2, reused_steps=("fetchUser",),
                       depth=3, holds_slot=True, error={"message": "boom"},
                       expires_at=int(backend.clock()) + 3600)
        backend.repo.create_run(run)

        stored = backend.repo.get_run(run.id)

        assert stored == run.evolve(version=1)

    def test_create_with_steps_stores_them_in_one_detail(self, backend):
        run = make_run()
        steps = [make_step(1, status=StepStatus.PENDING),
                 make_step(0, status=StepStatus.SKIPPED, output={"id": 7}, reused_from="r0")]
        backend.repo.create_run(run, steps)

        stored, stored_steps = backend.repo.get_detail(run.id)

        assert stored.id == run.id
        assert stored_steps == sorted(steps, key=lambda step: step.index)

    @pytest.mark.parametrize("with_steps", [False, True])
    def test_creating_an_existing_run_is_rejected_with_its_status(self, backend, with_steps):
        run = make_run()
        backend.repo.create_run(run)
        _start(backend, run)

        with pytest.raises(AlreadyExists) as caught:
            backend.repo.create_run(run, [make_step(0)] if with_steps else ())

        assert caught.value.status == "running"
        assert backend.repo.get_detail(run.id)[1] == []

    def test_unknown_run_is_not_found(self, backend):
        with pytest.raises(RunNotFound):
            backend.repo.get_run("no-such-run")
        with pytest.raises(RunNotFound):
            backend.repo.get_detail("no-such-run")

    def test_expired_run_is_hidden_before_it_is_deleted(self, backend):
        run = make_run(expires_at=int(backend.clock()) + 60)
        backend.repo.create_run(run, [make_step(0)])
        assert backend.repo.get_run(run.id).id == run.id

        backend.clock.advance(61)

        with pytest.raises(RunNotFound):
            backend.repo.get_run(run.id)
        with pytest.raises(RunNotFound):
            backend.repo.get_detail(run.id)
        with pytest.raises(RunNotFound):
            _start(backend, run)

    def test_detail_of_run_without_steps_has_no_steps(self, backend):
        run = make_run()
        backend.repo.create_run(run)

        assert backend.repo.get_detail(run.id) == (run.evolve(version=1), [])


class TestRunTransitions:
    def test_legal_transition_writes_fields_event_and_version(self, backend):
        run = make_run()
        backend.repo.create_run(run)

        updated = _start(backend, run)

        assert updated.status == RunStatus.RUNNING
        assert updated.started_at == run.created_at + timedelta(seconds=1)
        assert updated.version == 2
        assert [(e.type, e.from_status, e.to_status, e.actor) for e in updated.events] == [
            ("transition", "pending", "running", "executor")]
        assert backend.repo.get_run(run.id) == updated

    def test_events_accumulate_in_order(self, backend):
        run = make_run(events=(Event(at=BASE_TIME, type="created", actor="token:t1"),))
        backend.repo.create_run(run)
        running = _start(backend, run)

        done = backend.repo.update_run(
            running.evolve(status=RunStatus.COMPLETED, completed_at=BASE_TIME),
            expected_status=RunStatus.RUNNING,
            event=Event(at=BASE_TIME, type="transition", from_status="running",
                        to_status="completed", detail={"steps": 3}),
        )

        assert [event.type for event in done.events] == ["created", "transition", "transition"]
        assert done.events[-1].detail == {"steps": 3}
        assert done.version == 3

    def test_update_in_the_same_status_is_allowed_and_clears_fields(self, backend):
        run = make_run(error={"message": "old"})
        backend.repo.create_run(run)

        updated = backend.repo.update_run(run.evolve(error=None, attempt=2, version=1),
                                          expected_status=RunStatus.PENDING)

        assert updated.error is None and updated.attempt == 2
        assert backend.repo.get_run(run.id).error is None

    def test_update_keeps_the_stored_definition_and_trigger_data(self, backend):
        run = make_run()
        backend.repo.create_run(run)

        updated = backend.repo.update_run(
            run.evolve(status=RunStatus.RUNNING, definition={}, trigger_data=None, version=1),
            expected_status=RunStatus.PENDING)

        assert updated.definition == run.definition
        assert updated.trigger_data == run.trigger_data

    def test_update_keeps_what_identifies_and_indexes_the_run(self, backend):
        run = make_run(replay_of="original")
        backend.repo.create_run(run)

        updated = backend.repo.update_run(
            run.evolve(status=RunStatus.RUNNING, automation_name="other", trigger_type="cron",
                       created_at=BASE_TIME + timedelta(days=9), replay_of=None, version=1),
            expected_status=RunStatus.PENDING)

        kept = (run.automation_name, run.trigger_type, run.created_at, run.replay_of)
        assert (updated.automation_name, updated.trigger_type, updated.created_at,
                updated.replay_of) == kept
        stored = backend.repo.get_run(run.id)
        assert (stored.automation_name, stored.trigger_type, stored.created_at,
                stored.replay_of) == kept

    def test_an_illegal_transition_is_refused_before_any_write(self, backend):
        run = make_run()
        backend.repo.create_run(run)

        with pytest.raises(InvalidTransition) as caught:
            run.transition(RunStatus.COMPLETED, at=BASE_TIME, actor="executor")

        assert (caught.value.current, caught.value.requested) == ("pending", "completed")
        assert backend.repo.get_run(run.id) == run.evolve(version=1)

    def test_stale_expected_status_is_rejected_with_current_status(self, backend):
        run = make_run()
        backend.repo.create_run(run)
        _start(backend, run)

        with pytest.raises(InvalidTransition) as caught:
            backend.repo.update_run(run.evolve(status=RunStatus.CANCELLED),
                                    expected_status=RunStatus.PENDING)

        assert caught.value.status == "running"
        assert caught.value.current == "running"
        assert backend.repo.get_run(run.id).version == 2

    def test_terminal_run_never_changes(self, backend):
        run = make_run()
        backend.repo.create_run(run)
        running = _start(backend, run)
        failed, event = running.transition(RunStatus.FAILED, at=BASE_TIME, actor="executor")
        stored = backend.repo.update_run(failed, expected_status=RunStatus.RUNNING, event=event)

        with pytest.raises(InvalidTransition):  # the domain refuses to move it on
            stored.transition(RunStatus.CANCELLED, at=BASE_TIME, actor="token:t1")
        cancelled, event = running.transition(RunStatus.CANCELLED, at=BASE_TIME,
                                              actor="token:t1")
        with pytest.raises(InvalidTransition) as caught:  # a copy read while running
            backend.repo.update_run(cancelled, expected_status=RunStatus.RUNNING, event=event)

        assert caught.value.current == "failed"
        assert backend.repo.get_run(run.id) == stored

    def test_a_write_based_on_an_older_copy_is_rejected_with_the_stored_run(self, backend):
        run = make_run()
        backend.repo.create_run(run)
        running = _start(backend, run)
        newer = backend.repo.update_run(running.evolve(attempt=2),
                                        expected_status=RunStatus.RUNNING)

        with pytest.raises(StaleRun) as caught:  # same status, but read before `newer`
            backend.repo.update_run(running.evolve(error={"message": "late"}),
                                    expected_status=RunStatus.RUNNING)

        assert caught.value.stored.version == newer.version == running.version + 1
        assert caught.value.stored.attempt == 2
        stored = backend.repo.get_run(run.id)
        assert (stored.attempt, stored.error, stored.version) == (2, None, newer.version)
        again = backend.repo.update_run(caught.value.stored.evolve(error={"message": "late"}),
                                        expected_status=RunStatus.RUNNING)
        assert (again.attempt, again.error) == (2, {"message": "late"})

    def test_a_claimed_step_reads_back_with_its_lease_and_a_recorded_one_without(self, backend):
        run = make_run()
        backend.repo.create_run(run)
        lease = BASE_TIME + timedelta(seconds=90)
        claimed = backend.repo.claim_step(run.id, make_step(0, status=StepStatus.PENDING),
                                          token="t1", now=BASE_TIME, lease_until=lease)
        assert claimed.lease_until == lease
        assert backend.repo.get_detail(run.id)[1][0].lease_until == lease

        backend.repo.write_step(run.id, claimed.evolve(status=StepStatus.COMPLETED),
                                expect={StepStatus.RUNNING}, token="t1")

        assert backend.repo.get_detail(run.id)[1][0].lease_until is None

    def test_update_of_unknown_run_is_not_found(self, backend):
        with pytest.raises(RunNotFound):
            backend.repo.update_run(make_run(status=RunStatus.RUNNING),
                                    expected_status=RunStatus.PENDING)

    def test_racing_cancel_and_complete_have_exactly_one_winner(self, backend):
        for _ in range(8):
            run = make_run()
            backend.repo.create_run(run)
            running = _start(backend, run)
            outcomes = _race(backend, running, [RunStatus.CANCELLED, RunStatus.COMPLETED])

            winners = [status for status, error in outcomes if error is None]
            losers = [error for _, error in outcomes if error is not None]
            assert len(winners) == 1 and len(losers) == 1
            assert isinstance(losers[0], InvalidTransition)
            assert losers[0].current == winners[0].value
            assert backend.repo.get_run(run.id).status == winners[0]


def _race(backend, running, targets):
    """Run one update per target status at the same moment; (status, error or None) each."""
    barrier = threading.Barrier(len(targets))
    outcomes = []

    def attempt(status):
        barrier.wait()
        try:
            backend.repo.update_run(running.evolve(status=status),
                                    expected_status=RunStatus.RUNNING)
            outcomes.append((status, None))
        except InvalidTransition as exc:
            outcomes.append((status, exc))

    threads = [threading.Thread(target=attempt, args=(status,)) for status in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


class TestEveryTransition:
    """Every (from, to) pair of the eight statuses, decided by the domain and persisted by
    each backend: a legal one lands with its event, an illegal one never reaches the store.
    One store per backend for the class (each case has its own run)."""

    @pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
    def test_transition_on_every_backend(self, shared_backend, pair):
        current, requested = pair
        repo = shared_backend.repo
        run = make_run(status=current)
        repo.create_run(run)
        stored = repo.get_run(run.id)
        at = BASE_TIME + timedelta(minutes=1)

        if pair not in LEGAL:
            with pytest.raises(InvalidTransition):
                stored.transition(requested, at=at, actor="executor")
            assert repo.get_run(run.id) == stored
            return

        moved, event = stored.transition(requested, at=at, actor="executor")
        written = repo.update_run(moved, expected_status=current, event=event)

        assert repo.get_run(run.id) == written
        assert (written.status, written.version) == (requested, stored.version + 1)
        assert written.events[-1] == event
        # The write was conditional on `current`: the same decision cannot land twice.
        with pytest.raises(InvalidTransition) as caught:
            repo.update_run(moved, expected_status=current, event=event)
        assert caught.value.current == requested.value


class TestDefinitionsByReference:
    """The DynamoDB adapter keeps definitions out of run items (one item per version)."""

    def test_run_items_reference_one_stored_definition(self, aws, settings):
        from chalicelib.adapters.dynamo_repository import DynamoRunRepository

        first, second = make_run(), make_run()
        writer = DynamoRunRepository(settings)
        writer.create_run(first)
        writer.create_run(second)
        client = aws.client("dynamodb")
        items = [client.get_item(TableName=settings.runs_table,
                                 Key={"pk": {"S": run.id}, "sk": {"S": "RUN"}})["Item"]
                 for run in (first, second)]
        assert "definition" not in items[0] and "definition" not in items[1]
        assert items[0]["definitionRef"] == items[1]["definitionRef"]
        reader = DynamoRunRepository(settings)  # a cold process: nothing cached
        assert reader.get_run(first.id).definition == first.definition
        assert reader.get_detail(second.id)[0].definition == second.definition
