"""PynamoDB schema of the runs table (infra/resources.yaml) and its mapping to domain objects.

One table holds every item type, told apart by the sort key: the run ("RUN"), its steps
("STEP#0003"), list counters ("COUNTER"), stream checkpoints, markers and API tokens. The
models are bound to a table name at run time (`bind_tables`) and share one connection, so
one botocore client carries every request the adapters make.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from collections.abc import Mapping
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import TableConnection
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from ..domain.clock import iso, parse_iso
from ..domain.model import Event, Run, Step, Waiting
from ..domain.statuses import RunStatus, StepStatus

RUN_SK = "RUN"
COUNTER_SK = "COUNTER"
ALL = "*"  # wildcard part of a counter key
# Attributes every list index projects besides its keys (see infra/resources.yaml).
PROJECTED = ("triggerType", "expiresAt")
# byStatus also projects the status and automation: its "active" entries (pending and running
# runs) are told apart by a filter, so a run's entry moves once (active → its end status).
STATUS_PROJECTED = ("status", "autoPk")
ACTIVE = "active"
ACTIVE_STATUSES = frozenset({RunStatus.PENDING, RunStatus.RUNNING})
# Every statusPk a run item may hold: each run is in exactly one of these byStatus partitions.
STATUS_PARTITIONS = (ACTIVE, *(s.value for s in RunStatus if s not in ACTIVE_STATUSES))


def step_sk(index: int) -> str:
    """Sort key of a step item; zero-padded so steps sort by index."""
    return "STEP#%04d" % index


def counter_pk(automation: str | None, trigger_type: str | None) -> str:
    """Key of the counter for one (automation, trigger type) pair; None means any."""
    return f"COUNTER#{automation or ALL}#{trigger_type or ALL}"


def status_keys(automation: str, status: RunStatus | str) -> tuple[str, str | None]:
    """(statusPk, autoStatusPk) of a run: while pending or running it is listed under
    statusPk "active" only; once ended under its status, with and without its automation.

    Index writes are billed per entry put, updated or deleted: a run pays 1 (the "active"
    entry put) + 1 (its projected status, pending → running) + 2 (the move to its end status)
    in byStatus and 1 in byAutomationStatus. These two answer every list without a replay,
    waiting or payload filter (dynamo_query.choose_plan): there is no index of every run.
    """
    status = RunStatus(status)
    if status in ACTIVE_STATUSES:
        return ACTIVE, None
    return status.value, f"{automation}#{status.value}"


def _index(name: str, hash_attr: str, extra: tuple[str, ...] = ()) -> GlobalSecondaryIndex:
    meta = type("Meta", (), {"index_name": name,
                             "projection": IncludeProjection([*PROJECTED, *extra])})
    attrs = {
        "Meta": meta,
        hash_attr: UnicodeAttribute(hash_key=True),
        "listSk": UnicodeAttribute(range_key=True),
    }
    return type(f"{name}Index", (GlobalSecondaryIndex,), attrs)()


# index name → hash key attribute; the range key is always listSk. Tables made before issue 13
# also had byAll (allPk) and byAutomation (autoPk): README, "Upgrading a stage", says how.
INDEXES = {
    "byStatus": "statusPk",
    "byAutomationStatus": "autoStatusPk",
    "byReplayOf": "replayPk",
    "byWaiting": "waitingPk",
    "bySearch1": "search1Pk",
    "bySearch2": "search2Pk",
    "bySearch3": "search3Pk",
}
# The search indexes, one per declared key position (an item holds one value per key).
SEARCH_INDEXES = (("bySearch1", "search1Pk"), ("bySearch2", "search2Pk"),
                  ("bySearch3", "search3Pk"))


class EventMap(MapAttribute):
    at = UnicodeAttribute()
    type = UnicodeAttribute()
    from_status = UnicodeAttribute(attr_name="from", null=True)
    to_status = UnicodeAttribute(attr_name="to", null=True)
    actor = UnicodeAttribute(null=True)
    detail = JSONAttribute(null=True)


class _Keyed(Model):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class RunItemBase(_Keyed):
    list_sk = UnicodeAttribute(attr_name="listSk")
    auto_pk = UnicodeAttribute(attr_name="autoPk")  # projected in byStatus, a key nowhere
    status_pk = UnicodeAttribute(attr_name="statusPk")
    auto_status_pk = UnicodeAttribute(attr_name="autoStatusPk", null=True)
    replay_pk = UnicodeAttribute(attr_name="replayPk", null=True)
    trigger_type = UnicodeAttribute(attr_name="triggerType")
    expires_at = NumberAttribute(attr_name="expiresAt", null=True)
    automation_name = UnicodeAttribute(attr_name="automationName")
    status = UnicodeAttribute()
    trigger_data = JSONAttribute(attr_name="triggerData", null=True)
    created_at = UnicodeAttribute(attr_name="createdAt")
    definition = JSONAttribute(null=True)  # inline only in items written before definitionRef
    definition_ref = UnicodeAttribute(attr_name="definitionRef", null=True)
    started_at = UnicodeAttribute(attr_name="startedAt", null=True)
    completed_at = UnicodeAttribute(attr_name="completedAt", null=True)
    deadline_at = UnicodeAttribute(attr_name="deadlineAt", null=True)
    cancelled_at = UnicodeAttribute(attr_name="cancelledAt", null=True)
    attempt = NumberAttribute(default=1)
    error = JSONAttribute(null=True)
    replay_of = UnicodeAttribute(attr_name="replayOf", null=True)
    resume_from = NumberAttribute(attr_name="resumeFrom", null=True)
    reused_steps = JSONAttribute(attr_name="reusedSteps", null=True)
    depth = NumberAttribute(default=0)
    holds_slot = BooleanAttribute(attr_name="holdsSlot", default=False)
    events = ListAttribute(of=EventMap, default=list)
    version = NumberAttribute(default=0)
    # Set only while the run is running and parked (retry backoff or delay/wait).
    waiting_pk = UnicodeAttribute(attr_name="waitingPk", null=True)
    waiting = JSONAttribute(null=True)
    search1_pk = UnicodeAttribute(attr_name="search1Pk", null=True)
    search2_pk = UnicodeAttribute(attr_name="search2Pk", null=True)
    search3_pk = UnicodeAttribute(attr_name="search3Pk", null=True)
    by_status = _index("byStatus", "statusPk", STATUS_PROJECTED)
    by_automation_status = _index("byAutomationStatus", "autoStatusPk")
    by_replay_of = _index("byReplayOf", "replayPk")
    # Few runs wait at once; status and automation projected to filter on, as in byStatus.
    by_waiting = _index("byWaiting", "waitingPk", STATUS_PROJECTED)
    by_search1 = _index("bySearch1", "search1Pk", STATUS_PROJECTED)
    by_search2 = _index("bySearch2", "search2Pk", STATUS_PROJECTED)
    by_search3 = _index("bySearch3", "search3Pk", STATUS_PROJECTED)


class StepItemBase(_Keyed):
    index = NumberAttribute()
    name = UnicodeAttribute()
    type = UnicodeAttribute()
    operator = UnicodeAttribute()
    status = UnicodeAttribute()
    started_at = UnicodeAttribute(attr_name="startedAt", null=True)
    completed_at = UnicodeAttribute(attr_name="completedAt", null=True)
    attempt = NumberAttribute(default=0)
    attempts = JSONAttribute(default=list)
    output = JSONAttribute(null=True)
    error = JSONAttribute(null=True)
    reused_from = UnicodeAttribute(attr_name="reusedFrom", null=True)
    claim_token = UnicodeAttribute(attr_name="claimToken", null=True)
    next_attempt_at = UnicodeAttribute(attr_name="nextAttemptAt", null=True)
    lease_until = UnicodeAttribute(attr_name="leaseUntil", null=True)
    expires_at = NumberAttribute(attr_name="expiresAt", null=True)
    woken_at = UnicodeAttribute(attr_name="wokenAt", null=True)
    revoked = JSONAttribute(null=True)


class CounterItemBase(_Keyed):
    """One number per run status; maintained from the table's stream (adapters/counters.py)."""

    pending = NumberAttribute(null=True)
    running = NumberAttribute(null=True)
    completed = NumberAttribute(null=True)
    completed_with_errors = NumberAttribute(attr_name="completed-with-errors", null=True)
    failed = NumberAttribute(null=True)
    timed_out = NumberAttribute(attr_name="timed-out", null=True)
    exhausted = NumberAttribute(null=True)
    cancelled = NumberAttribute(null=True)


class CheckpointItemBase(_Keyed):
    seq = UnicodeAttribute()  # last applied stream sequence number, zero-padded
    expires_at = NumberAttribute(attr_name="expiresAt", null=True)


class MarkerItemBase(_Keyed):
    value = JSONAttribute()
    expires_at = NumberAttribute(attr_name="expiresAt")


class TokenItemBase(_Keyed):
    token_id = UnicodeAttribute(attr_name="tokenId")
    role = UnicodeAttribute()
    created_at = UnicodeAttribute(attr_name="createdAt")
    description = UnicodeAttribute(default="")
    expires_at = NumberAttribute(attr_name="expiresAt", null=True)  # TTL, epoch seconds
    token_hash = UnicodeAttribute(attr_name="tokenHash", null=True)  # listing entries only
    last_used_at = UnicodeAttribute(attr_name="lastUsedAt", null=True)  # listing entries only


class RateBucketItemBase(_Keyed):
    tat = NumberAttribute()  # the bucket's theoretical arrival time, epoch microseconds
    expires_at = NumberAttribute(attr_name="expiresAt")  # TTL: full again by then


@dataclass(frozen=True)
class Tables:
    """The item models bound to one table, sharing one PynamoDB connection."""

    run: type[RunItemBase]
    step: type[StepItemBase]
    counter: type[CounterItemBase]
    checkpoint: type[CheckpointItemBase]
    marker: type[MarkerItemBase]
    token: type[TokenItemBase]
    rate_bucket: type[RateBucketItemBase]
    connection: TableConnection

    @property
    def client(self):
        """The botocore client behind every request (hook `client.meta.events` to count)."""
        return self.connection.connection.client


@lru_cache(maxsize=None)
def bind_tables(table_name: str, region: str) -> Tables:
    """Model classes bound to `table_name` in `region`, cached per cold start."""
    meta = type("Meta", (), {"table_name": table_name, "region": region})
    bases = (RunItemBase, StepItemBase, CounterItemBase, CheckpointItemBase, MarkerItemBase,
             TokenItemBase, RateBucketItemBase)
    bound = [type(base.__name__.replace("Base", ""), (base,), {"Meta": meta}) for base in bases]
    connection = bound[0]._get_connection()  # built from the run model: it knows the indexes
    for model in bound[1:]:
        model._connection = connection
    return Tables(*bound, connection=connection)


def status_attribute(status: RunStatus | str) -> str:
    """Python name of the counter attribute holding `status` (stored as the status value)."""
    return RunStatus(status).name.lower()


def run_to_item(model: type[RunItemBase], run: Run,
                definition_ref: str | None = None) -> RunItemBase:
    """The run item of `run`, with every index key derived from it (the definition by
    reference when `definition_ref` is given)."""
    status_pk, auto_status_pk = status_keys(run.automation_name, run.status)
    return model(
        run.id, RUN_SK,
        list_sk=run.sort_key,
        auto_pk=run.automation_name,
        status_pk=status_pk,
        auto_status_pk=auto_status_pk,
        replay_pk=run.replay_of,
        trigger_type=run.trigger_type,
        expires_at=run.expires_at,
        automation_name=run.automation_name,
        status=run.status.value,
        trigger_data=run.trigger_data,
        created_at=iso(run.created_at),
        definition=None if definition_ref else run.definition,
        definition_ref=definition_ref,
        started_at=iso(run.started_at),
        completed_at=iso(run.completed_at),
        deadline_at=iso(run.deadline_at),
        cancelled_at=iso(run.cancelled_at),
        attempt=run.attempt,
        error=run.error,
        replay_of=run.replay_of,
        resume_from=run.resume_from,
        reused_steps=list(run.reused_steps),
        depth=run.depth,
        holds_slot=run.holds_slot,
        events=[event_to_map(event) for event in run.events],
        version=run.version,
        waiting_pk=waiting_pk(run),
        waiting=run.waiting_now.to_json() if run.waiting_now else None,
        **search_attributes(run),
    )


def waiting_pk(run: Run) -> str | None:
    """byWaiting's key: the kind of wait while the run is running and parked, else none."""
    return run.waiting_now.kind if run.waiting_now else None


def search_attributes(run: Run) -> dict[str, str | None]:
    """search1_pk..search3_pk: the run's search keys, in declaration order."""
    keys = list(run.search_keys)[:len(SEARCH_INDEXES)]
    keys += [None] * (len(SEARCH_INDEXES) - len(keys))
    return {f"search{i + 1}_pk": key for i, key in enumerate(keys)}


def event_to_map(event: Event) -> EventMap:
    """The stored form of one audit event."""
    return EventMap(at=iso(event.at), type=event.type, from_status=event.from_status,
                    to_status=event.to_status, actor=event.actor, detail=event.detail or {})


def _event(stored: EventMap) -> Event:
    return Event(at=parse_iso(stored.at), type=stored.type, from_status=stored.from_status,
                 to_status=stored.to_status, actor=stored.actor, detail=stored.detail or {})


def item_to_run(item: RunItemBase,
                definitions: Mapping[str, dict[str, Any]] | None = None) -> Run:
    """The domain run stored in a run item (`definitions` resolves its definitionRef)."""
    return Run(
        id=item.pk,
        automation_name=item.automation_name,
        status=RunStatus(item.status),
        trigger_type=item.trigger_type,
        trigger_data=item.trigger_data,
        created_at=parse_iso(item.created_at),
        definition=item.definition or (definitions or {}).get(item.definition_ref) or {},
        started_at=parse_iso(item.started_at),
        completed_at=parse_iso(item.completed_at),
        deadline_at=parse_iso(item.deadline_at),
        attempt=int(item.attempt),
        error=item.error,
        replay_of=item.replay_of,
        cancelled_at=parse_iso(item.cancelled_at),
        resume_from=None if item.resume_from is None else int(item.resume_from),
        reused_steps=tuple(item.reused_steps or ()),
        depth=int(item.depth),
        holds_slot=bool(item.holds_slot),
        events=tuple(_event(stored) for stored in item.events or ()),
        version=int(item.version),
        expires_at=None if item.expires_at is None else int(item.expires_at),
        waiting=Waiting.from_json(item.waiting),
        search_keys=tuple(key for key in (item.search1_pk, item.search2_pk, item.search3_pk)
                          if key),
    )


def step_fields(step: Step) -> dict[str, Any]:
    """Every stored attribute of a step except keys, lease and expiry."""
    return {
        "index": step.index,
        "name": step.name,
        "type": step.type,
        "operator": step.operator,
        "status": step.status.value,
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
        "attempt": step.attempt,
        "attempts": list(step.attempts),
        "output": step.output,
        "error": step.error,
        "reused_from": step.reused_from,
        "claim_token": step.claim_token,
        "next_attempt_at": iso(step.next_attempt_at),
        "woken_at": iso(step.woken_at),
        "revoked": list(step.revoked) or None,
    }


def step_to_item(model: type[StepItemBase], run_id: str, step: Step,
                 expires_at: int | None) -> StepItemBase:
    """The step item of `step` (no lease: a lease is only set by a claim)."""
    return model(run_id, step_sk(step.index), expires_at=expires_at, **step_fields(step))


def item_to_step(item: StepItemBase) -> Step:
    """The domain step stored in a step item."""
    return Step(
        index=int(item.index),
        name=item.name,
        type=item.type,
        operator=item.operator,
        status=StepStatus(item.status),
        started_at=parse_iso(item.started_at),
        completed_at=parse_iso(item.completed_at),
        attempt=int(item.attempt),
        attempts=tuple(item.attempts or ()),
        output=item.output,
        error=item.error,
        reused_from=item.reused_from,
        claim_token=item.claim_token,
        next_attempt_at=parse_iso(item.next_attempt_at),
        lease_until=parse_iso(item.lease_until),
        woken_at=parse_iso(item.woken_at),
        revoked=tuple(item.revoked or ()),
    )
