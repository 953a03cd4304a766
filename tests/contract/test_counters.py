"""List counters from the table's stream: pure deltas, and exactly-once application on moto."""
from __future__ import annotations

import pytest

from chalicelib.adapters.counters import (
    CounterWriter,
    StreamPoller,
    apply_records,
    deltas,
    process_stream_event,
)
from chalicelib.adapters.dynamo_repository import DynamoRunRepository
from chalicelib.domain.model import RunFilter
from chalicelib.domain.statuses import RunStatus

from tests.support.factories import make_run


def _image(status, automation="alpha", trigger="manual"):
    return {"pk": {"S": "r1"}, "sk": {"S": "RUN"}, "status": {"S": status},
            "automationName": {"S": automation}, "triggerType": {"S": trigger}}


def _record(name, old=None, new=None, seq="1", sk="RUN"):
    change = {"Keys": {"pk": {"S": "r1"}, "sk": {"S": sk}}, "SequenceNumber": seq}
    if old:
        change["OldImage"] = old
    if new:
        change["NewImage"] = new
    return {"eventID": f"e{seq}", "eventName": name, "dynamodb": change}


FOUR = ("COUNTER#alpha#manual", "COUNTER#alpha#*", "COUNTER#*#manual", "COUNTER#*#*")


class TestCounterDeltas:
    def test_insert_counts_the_new_status_in_four_counters(self):
        assert deltas([_record("INSERT", new=_image("pending"))]) == {
            key: {"pending": 1} for key in FOUR}

    def test_status_change_moves_one_run(self):
        record = _record("MODIFY", old=_image("pending"), new=_image("running"))

        assert deltas([record]) == {key: {"pending": -1, "running": 1} for key in FOUR}

    def test_modify_without_status_change_counts_nothing(self):
        assert deltas([_record("MODIFY", old=_image("running"), new=_image("running"))]) == {}

    def test_remove_uncounts_the_old_status(self):
        assert deltas([_record("REMOVE", old=_image("completed"))]) == {
            key: {"completed": -1} for key in FOUR}

    def test_step_and_counter_items_are_ignored(self):
        records = [_record("INSERT", new={"status": {"S": "running"}}, sk="STEP#0000"),
                   _record("MODIFY", old={}, new={"pending": {"N": "1"}}, sk="COUNTER")]

        assert deltas(records) == {}

    def test_changes_that_cancel_out_within_a_batch_are_dropped(self):
        records = [_record("INSERT", new=_image("pending"), seq="1"),
                   _record("MODIFY", old=_image("pending"), new=_image("running"), seq="2")]

        assert deltas(records) == {key: {"running": 1} for key in FOUR}


@pytest.fixture
def stream(aws, settings):
    """A repository, the stream reader and a counter writer on one moto table."""
    return DynamoRunRepository(settings), StreamPoller(settings), CounterWriter(settings)


def _all_records(poller):
    return [record for records in poller.fetch().values() for record in records]


class TestStreamCounters:
    def test_redelivered_lambda_batch_is_counted_once(self, stream):
        repo, poller, writer = stream
        for _ in range(3):
            repo.create_run(make_run())
        event = {"Records": _all_records(poller)}  # the runs and their shared definition

        assert process_stream_event(event, writer) == {"applied": len(event["Records"])}
        assert process_stream_event(event, writer) == {"applied": 0}
        assert repo.count_runs(RunFilter()) == 3

    def test_batch_retried_after_a_partial_apply_completes_it_once(self, stream):
        repo, poller, writer = stream
        runs = [make_run() for _ in range(4)]
        for run in runs:
            repo.create_run(run)
        repo.update_run(runs[0].evolve(status=RunStatus.CANCELLED, version=1),
                        expected_status=RunStatus.PENDING)
        records = _all_records(poller)

        apply_records(records[:2], "shard-1", writer)  # a crash after the first transaction
        apply_records(records, "shard-1", writer)  # the whole batch again

        assert repo.count_runs(RunFilter()) == 4
        assert repo.count_runs(RunFilter(statuses=(RunStatus.PENDING,))) == 3
        assert repo.count_runs(RunFilter(statuses=(RunStatus.CANCELLED,))) == 1

    def test_poller_drains_only_new_records_across_calls(self, stream):
        repo, poller, _ = stream
        repo.create_run(make_run(automation_name="alpha"))
        assert poller.drain() > 0
        repo.create_run(make_run(automation_name="alpha"))
        poller.drain()

        assert poller.drain() == 0
        assert repo.count_runs(RunFilter(automation_name="alpha")) == 2

    def test_a_new_poller_rereads_the_stream_without_double_counting(self, stream, settings):
        repo, poller, _ = stream
        repo.create_run(make_run())
        poller.drain()

        StreamPoller(settings).drain()

        assert repo.count_runs(RunFilter()) == 1

    def test_batches_touching_many_counters_are_split_into_transactions(self, stream, settings):
        repo, poller, _ = stream
        # 60 automations: 122 counters, more than one 100-item transaction holds.
        for index in range(60):
            repo.create_run(make_run(automation_name=f"auto-{index}"))

        poller.drain()

        assert repo.count_runs(RunFilter()) == 60
        assert repo.count_runs(RunFilter(automation_name="auto-59")) == 1
        assert repo.count_runs(RunFilter(trigger_type="manual")) == 60
