"""Plain dataclasses for runs, steps and their audit events; no storage concerns here."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from .clock import iso, ms_between, parse_iso
from .definitions import Automation, stored_automation
from .errors import InvalidTransition
from .search import search_key
from .statuses import RunStatus, StepStatus, can_transition, is_terminal


@dataclass(frozen=True)
class Event:
    """One line of a run's audit trail: a transition, a replay it spawned, a cancel."""

    at: datetime
    type: str  # "created" | "transition" | "replayed" | "cancel"
    from_status: str | None = None
    to_status: str | None = None
    actor: str | None = None  # "token:<id>", "executor", "sweeper", "scheduler", ...
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "type": self.type,
            "from": self.from_status,
            "to": self.to_status,
            "actor": self.actor,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Step:
    """One action of a run, as recorded (or as not reached yet)."""

    index: int
    name: str
    type: str
    operator: str
    status: StepStatus = StepStatus.PENDING
    started_at: datetime | None = None
    completed_at: datetime | None = None
    attempt: int = 0
    attempts: tuple[dict[str, Any], ...] = ()
    output: Any = None
    error: dict[str, Any] | None = None
    reused_from: str | None = None
    # The claim of the attempt in flight; while parked, the token its wake-up message carries.
    claim_token: str | None = None
    next_attempt_at: datetime | None = None  # set while waiting for a retry or a delay
    lease_until: datetime | None = None  # a claimed attempt's lease (set by claims only)
    # Set by retry-now: when the operator woke the wait, and the wake-up tokens it revoked
    # (a message of a revoked chain is stale: executor drops it).
    woken_at: datetime | None = None
    revoked: tuple[str, ...] = ()

    @property
    def duration_ms(self) -> int | None:
        return ms_between(self.started_at, self.completed_at)

    def evolve(self, **changes: Any) -> "Step":
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "type": self.type,
            "operator": self.operator,
            "status": self.status.value,
            "startedAt": iso(self.started_at),
            "completedAt": iso(self.completed_at),
            "durationMs": self.duration_ms,
            "attempt": self.attempt,
            "attempts": list(self.attempts),
            "output": self.output,
            "error": self.error,
            "reusedFrom": self.reused_from,
        }


WAIT_KINDS = ("retry", "delay")


@dataclass(frozen=True)
class Waiting:
    """A running run parked on one step: its retry backoff or a `delay/wait`, until when."""

    kind: str  # "retry" | "delay"
    step: str
    step_index: int
    attempt: int  # the attempt that runs when the wait ends (a delay: the step's attempt)
    until: datetime

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "stepIndex": self.step_index,
                "attempt": self.attempt, "waitingUntil": iso(self.until)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Waiting | None":
        if not data:
            return None
        return cls(kind=data["kind"], step=data["step"], step_index=int(data["stepIndex"]),
                   attempt=int(data["attempt"]), until=parse_iso(data["waitingUntil"]))


@dataclass(frozen=True)
class Run:
    """A run of an automation: its trigger, definition snapshot, status and timings."""

    id: str
    automation_name: str
    status: RunStatus
    trigger_type: str
    trigger_data: Any
    created_at: datetime
    definition: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None  # admission time; None while pending
    completed_at: datetime | None = None
    deadline_at: datetime | None = None  # started_at + run timeout
    attempt: int = 1
    error: dict[str, Any] | None = None
    replay_of: str | None = None
    cancelled_at: datetime | None = None
    resume_from: int | None = None
    reused_steps: tuple[str, ...] = ()
    depth: int = 0  # automation/call nesting
    holds_slot: bool = False  # holds a concurrency slot of its automation
    events: tuple[Event, ...] = ()
    version: int = 0  # bumped by every write of the run item
    expires_at: int | None = None  # epoch seconds, DynamoDB TTL
    waiting: Waiting | None = None  # parked on a retry backoff or a delay/wait
    # Digests of the declared trigger-data keys' values (domain/search.py), fixed at creation
    # from the trigger data as stored (after redaction).
    search_keys: tuple[str, ...] = ()

    @property
    def waiting_now(self) -> Waiting | None:
        """The wait, while the run is running (an ended run waits for nothing)."""
        return self.waiting if self.status == RunStatus.RUNNING else None

    @property
    def duration_ms(self) -> int | None:
        return ms_between(self.started_at, self.completed_at)

    @property
    def queued_ms(self) -> int | None:
        return ms_between(self.created_at, self.started_at)

    @cached_property
    def automation(self) -> Automation:
        """The stored definition as the typed Automation the services read (parsed once per
        definition reference, whatever the number of Run copies)."""
        return stored_automation(self.definition)

    @property
    def sort_key(self) -> str:
        """`createdAt#id`: the list order (descending) shared by every index and cursor."""
        return f"{iso(self.created_at)}#{self.id}"

    def evolve(self, **changes: Any) -> "Run":
        """The run with `changes` (a status change goes through `transition`)."""
        return replace(self, **changes)

    def transition(self, to: RunStatus, *, at: datetime, actor: str,
                   event_type: str = "transition", detail: dict[str, Any] | None = None,
                   **fields: Any) -> tuple["Run", Event]:
        """The run moved to `to` at `at`, and the audit event that says so.

        Checks TRANSITIONS (InvalidTransition names this copy's status otherwise). Entering
        `running` sets `started_at`; entering a terminal status sets `completed_at` (and
        `cancelled_at` for a cancel); `fields` sets (or overrides) any other field. The
        repository writes the result conditional on the stored status still being this one.
        """
        if not can_transition(self.status, to):
            raise InvalidTransition(self.id, self.status.value, to.value)
        stamps: dict[str, Any] = {}
        if to == RunStatus.RUNNING:
            stamps["started_at"] = at
        if is_terminal(to):
            stamps["completed_at"] = at
        if to == RunStatus.CANCELLED:
            stamps["cancelled_at"] = at
        moved = replace(self, status=to, **{**stamps, **fields})
        event = Event(at=at, type=event_type, from_status=self.status.value,
                      to_status=to.value, actor=actor, detail=detail or {})
        return moved, event

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "automationName": self.automation_name,
            "status": self.status.value,
            "triggerType": self.trigger_type,
            "triggerData": self.trigger_data,
            "createdAt": iso(self.created_at),
            "startedAt": iso(self.started_at),
            "completedAt": iso(self.completed_at),
            "durationMs": self.duration_ms,
            "queuedMs": self.queued_ms,
            "attempt": self.attempt,
            "error": self.error,
            "replayOf": self.replay_of,
            "cancelledAt": iso(self.cancelled_at),
            "waiting": self.waiting_now.to_json() if self.waiting_now else None,
            "waitingUntil": iso(self.waiting_now.until) if self.waiting_now else None,
        }


@dataclass(frozen=True)
class RunFilter:
    """The list filters of SPEC section 6 (all optional, combined with AND)."""

    automation_name: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    trigger_type: str | None = None
    replay_of: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    waiting: str | None = None  # "retry" | "delay": running runs parked on such a wait
    # (key, value) of a declared trigger-data key (domain/search.py), exact match
    data: tuple[str, str] | None = None

    def matches(self, run: Run) -> bool:
        """True when `run` satisfies every filter given (what each backend's index or
        residual condition must agree with)."""
        if self.automation_name is not None and run.automation_name != self.automation_name:
            return False
        if self.statuses and run.status not in self.statuses:
            return False
        if self.trigger_type is not None and run.trigger_type != self.trigger_type:
            return False
        if self.replay_of is not None and run.replay_of != self.replay_of:
            return False
        if self.since is not None and run.created_at < self.since:
            return False
        if self.until is not None and run.created_at > self.until:
            return False
        if self.waiting is not None and (run.waiting_now is None
                                         or run.waiting_now.kind != self.waiting):
            return False
        if self.data is not None and search_key(*self.data) not in run.search_keys:
            return False
        return True


@dataclass(frozen=True)
class RunSlice:
    """One page of runs from the repository, newest first."""

    runs: list[Run]
    has_more: bool
