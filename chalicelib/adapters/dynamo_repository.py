"""RunRepository on DynamoDB: one partition per run, every status change a conditional write.

PynamoDB models give the schema and build the expressions; where PynamoDB lacks a parameter
(ReturnValuesOnConditionCheckFailure on UpdateItem) the request goes to the same botocore
client directly, so a lost race reports the stored item without a second read.
"""
from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.constants import ALL_NEW, ALL_OLD
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..domain.clock import iso
from ..domain.errors import (
    AlreadyExists, InvalidTransition, RunNotFound, StaleRun, StepConflict,
)
from ..domain.model import Event, Run, RunFilter, RunSlice, Step
from ..domain.statuses import RunStatus, StepStatus
from ..settings import Settings
from .dynamo_definitions import DefinitionStore
from .dynamo_models import (
    RUN_SK,
    Tables,
    bind_tables,
    event_to_map,
    item_to_run,
    item_to_step,
    run_to_item,
    status_keys,
    step_fields,
    waiting_pk,
    step_sk,
    step_to_item,
)
from .dynamo_query import RunQueries
from .dynamo_retention import delete_partition, expired_run_ids


class ConditionFailed(Exception):
    """A conditional write's condition was false; `item` is the stored item (raw) or None."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("conditional check failed")
        self.item = item


def conditional(call, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Make one conditional write; raise ConditionFailed (chained) when its condition fails."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        raise ConditionFailed(exc.response.get("Item")) from exc


class DynamoRunRepository:
    """RunRepository on the runs table (see dynamo_models for the item layout).

    `client` is the one botocore client behind every request, so tests can count requests
    with `repo.client.meta.events.register("before-call.dynamodb", hook)`.
    """

    def __init__(self, settings: Settings, clock=time.time) -> None:
        self.tables: Tables = bind_tables(settings.runs_table, settings.region)
        self._clock = clock
        self._retention_s = settings.retention_days * 86400
        self._definitions = DefinitionStore(self.tables.client, settings.runs_table)
        self._queries = RunQueries(self.tables, clock, self._definitions)

    @property
    def client(self):
        """The botocore DynamoDB client every request of this repository goes through."""
        return self.tables.client

    def _live(self, run_id: str, raw: dict[str, Any] | None) -> Run:
        if raw is None:
            raise RunNotFound(run_id)
        run = self._to_run(self.tables.run.from_raw_data(raw))
        if run.expires_at is not None and run.expires_at <= self._clock():
            # DynamoDB deletes expired items lazily (within days); hide them meanwhile.
            raise RunNotFound(run_id)
        return run

    def _to_run(self, item) -> Run:
        return item_to_run(item, self._definitions.resolve([item.definition_ref]))

    def create_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        """Conditional put of the run; with steps, one TransactWriteItems. The definition is
        stored first, by reference, so a run item never points at a missing definition."""
        item = run_to_item(self.tables.run, replace(run, version=1),
                           definition_ref=self._definitions.ref(run.definition))
        condition = self.tables.run.pk.does_not_exist()
        if not steps:
            kwargs = item.get_save_kwargs_from_instance(
                condition=condition, return_values_on_condition_failure=ALL_OLD)
            try:
                conditional(self.client.put_item, kwargs)
            except ConditionFailed as exc:
                raise self._exists(run.id, exc.item) from exc
            return
        try:
            with TransactWrite(connection=self.tables.connection.connection) as transaction:
                transaction.save(item, condition=condition, return_values=ALL_OLD)
                for step in steps:
                    transaction.save(step_to_item(self.tables.step, run.id, step, run.expires_at))
        except TransactWriteError as exc:
            reason = (exc.cancellation_reasons or [None])[0]
            if reason is None or reason.code != "ConditionalCheckFailed":
                raise
            raise self._exists(run.id, reason.raw_item) from exc

    def _exists(self, run_id: str, raw: dict[str, Any] | None) -> AlreadyExists:
        status = (raw or {}).get("status", {}).get("S")
        return AlreadyExists(f"run {run_id} exists", status=status)

    def get_run(self, run_id: str) -> Run:
        response = self.tables.connection.get_item(run_id, RUN_SK, consistent_read=True)
        return self._live(run_id, response.get("Item"))

    def get_detail(self, run_id: str) -> tuple[Run, list[Step]]:
        """One Query on the run's partition: the run item and its step items."""
        run_raw, steps, start = None, [], None
        while True:
            page = self.tables.connection.query(run_id, consistent_read=True,
                                                exclusive_start_key=start)
            for raw in page.get("Items", []):
                sort_key = raw["sk"]["S"]
                if sort_key == RUN_SK:
                    run_raw = raw
                elif sort_key.startswith("STEP#"):
                    steps.append(item_to_step(self.tables.step.from_raw_data(raw)))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return self._live(run_id, run_raw), sorted(steps, key=lambda step: step.index)

    def update_run(
        self, run: Run, *, expected_status: RunStatus, event: Event | None = None
    ) -> Run:
        """One UpdateItem conditional on the stored status and version (so a writer that read
        an older copy cannot overwrite fields another writer changed); the event is appended
        in it. A lost race on the version alone raises StaleRun with the stored run. Whether
        the status change is legal is the domain's decision (Run.transition), made before."""
        model = self.tables.run
        live = model.expires_at.does_not_exist() | (model.expires_at > self._clock())
        kwargs = self.tables.connection.get_operation_kwargs(
            run.id, RUN_SK,
            actions=self._run_actions(run, event),
            condition=(model.status == expected_status.value) & (model.version == run.version)
            & live,
            return_values=ALL_NEW,
            return_values_on_condition_failure=ALL_OLD,
        )
        try:
            response = conditional(self.client.update_item, kwargs)
        except ConditionFailed as exc:
            current = self._live(run.id, exc.item)
            if current.status == expected_status:
                raise StaleRun(current) from exc
            raise InvalidTransition(run.id, current.status.value, run.status.value) from exc
        return self._to_run(model.from_raw_data(response["Attributes"]))

    def _run_actions(self, run: Run, event: Event | None) -> list:
        model = self.tables.run
        status_pk, auto_status_pk = status_keys(run.automation_name, run.status)
        actions = [
            _assign(model.status, run.status.value),
            _assign(model.status_pk, status_pk),
            _assign(model.auto_status_pk, auto_status_pk),
            _assign(model.started_at, iso(run.started_at)),
            _assign(model.completed_at, iso(run.completed_at)),
            _assign(model.deadline_at, iso(run.deadline_at)),
            _assign(model.cancelled_at, iso(run.cancelled_at)),
            _assign(model.attempt, run.attempt),
            _assign(model.error, run.error),
            _assign(model.resume_from, run.resume_from),
            _assign(model.reused_steps, list(run.reused_steps)),
            _assign(model.depth, run.depth),
            _assign(model.holds_slot, run.holds_slot),
            _assign(model.expires_at, run.expires_at),
            _assign(model.waiting_pk, waiting_pk(run)),
            _assign(model.waiting, run.waiting_now.to_json() if run.waiting_now else None),
            model.version.add(1),
        ]
        if event is not None:
            actions.append(model.events.set((model.events | []).append([event_to_map(event)])))
        return actions

    def claim_step(
        self, run_id: str, step: Step, *, token: str, now: datetime, lease_until: datetime
    ) -> Step:
        """One UpdateItem: claim when absent, pending, or running without a live lease."""
        model = self.tables.step
        at = iso(now)
        free = model.lease_until.does_not_exist() | (model.lease_until <= at)
        due = model.next_attempt_at.does_not_exist() | (model.next_attempt_at <= at)
        condition = (model.pk.does_not_exist() | (model.status == StepStatus.PENDING.value)
                     | ((model.status == StepStatus.RUNNING.value) & free & due))
        kwargs = self.tables.connection.get_operation_kwargs(
            run_id, step_sk(step.index),
            actions=self._claim_actions(step, token, lease_until),
            condition=condition,
            return_values=ALL_NEW,
            return_values_on_condition_failure=ALL_OLD,
        )
        try:
            response = conditional(self.client.update_item, kwargs)
        except ConditionFailed as exc:
            raise StepConflict(run_id, step.index, _status_of(exc.item)) from exc
        return item_to_step(model.from_raw_data(response["Attributes"]))

    def _claim_actions(self, step: Step, token: str, lease_until: datetime) -> list:
        model = self.tables.step
        fields = step_fields(step)
        # The attempt count, attempt log and first start survive from the stored step.
        kept = {"attempt", "attempts", "started_at", "status", "claim_token", "next_attempt_at"}
        actions = [_assign(getattr(model, name), value) for name, value in fields.items()
                   if name not in kept]
        actions += [
            model.status.set(StepStatus.RUNNING.value),
            model.claim_token.set(token),
            model.lease_until.set(iso(lease_until)),
            model.next_attempt_at.remove(),
            model.attempt.set((model.attempt | 0) + 1),
            model.attempts.set(model.attempts | list(step.attempts)),
            model.expires_at.set(model.expires_at | self._step_expiry()),
        ]
        if step.started_at is not None:
            actions.append(model.started_at.set(model.started_at | iso(step.started_at)))
        return actions

    def _step_expiry(self) -> int:
        # A step outlives its run by at most the run's duration: the run's expiry was set
        # at creation, this one at the step's first write.
        return int(self._clock()) + self._retention_s

    def write_step(
        self,
        run_id: str,
        step: Step,
        *,
        expect: Collection[StepStatus | None],
        token: str | None = None,
    ) -> Step:
        """Conditional put of the whole step (which drops the lease)."""
        model = self.tables.step
        allowed = [model.pk.does_not_exist() if status is None else model.status == status.value
                   for status in expect]
        if not allowed:
            stored = self.tables.connection.get_item(run_id, step_sk(step.index),
                                                     consistent_read=True)
            raise StepConflict(run_id, step.index, _status_of(stored.get("Item")))
        condition = allowed[0]
        for alternative in allowed[1:]:
            condition = condition | alternative
        if token is not None:
            condition = condition & (model.claim_token == token)
        item = step_to_item(model, run_id, step, self._step_expiry())
        kwargs = item.get_save_kwargs_from_instance(
            condition=condition, return_values_on_condition_failure=ALL_OLD)
        try:
            conditional(self.client.put_item, kwargs)
        except ConditionFailed as exc:
            raise StepConflict(run_id, step.index, _status_of(exc.item)) from exc
        return replace(step, lease_until=None)

    def list_runs(
        self, filt: RunFilter, *, limit: int, after: str | None = None, offset: int = 0
    ) -> RunSlice:
        return self._queries.list_runs(filt, limit=limit, after=after, offset=offset)

    def count_runs(self, filt: RunFilter) -> int:
        return self._queries.count_runs(filt)

    def runs_in_status(self, status: RunStatus, *, automation_name: str | None = None,
                       limit: int = 100, oldest_first: bool = True) -> list[Run]:
        return self._queries.runs_in_status(status, automation_name=automation_name,
                                            limit=limit, oldest_first=oldest_first)

    def expired_runs(self, now: datetime, limit: int) -> list[str]:
        return expired_run_ids(self.tables, now, limit)

    def delete_run(self, run_id: str) -> None:
        delete_partition(self.tables, run_id)


def _assign(attribute, value: Any):
    """SET the attribute, or REMOVE it for None (PynamoDB would store a NULL, which a sparse
    index key or an `attribute_not_exists` condition must never see)."""
    return attribute.remove() if value is None else attribute.set(value)


def _status_of(raw: dict[str, Any] | None) -> str | None:
    return (raw or {}).get("status", {}).get("S")
