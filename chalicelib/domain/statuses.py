"""Run and step statuses and the one table of legal run transitions (SPEC section 3)."""
from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    PENDING = "pending"  # recorded, waiting to execute or for a concurrency slot
    RUNNING = "running"  # executing, waiting between attempts or in delay/wait
    COMPLETED = "completed"  # all actions succeeded, or a filter halted the run
    COMPLETED_WITH_ERRORS = "completed-with-errors"  # a step failed under continueOnError
    FAILED = "failed"  # a step failed and no retry policy applied
    TIMED_OUT = "timed-out"  # the run timeout, or a step's final attempt timing out
    EXHAUSTED = "exhausted"  # a step failed after all its configured attempts
    CANCELLED = "cancelled"  # cancelled through the API


class StepStatus(str, Enum):
    PENDING = "pending"  # not reached yet
    RUNNING = "running"  # claimed by an executor, or waiting for its next attempt
    COMPLETED = "completed"  # succeeded; its output is recorded
    FAILED = "failed"  # errored (finally, or under continueOnError)
    SKIPPED = "skipped"  # not run: filter halt, cancel, run failure/timeout, or reused by replay


TERMINAL: frozenset[RunStatus] = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.COMPLETED_WITH_ERRORS,
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.EXHAUSTED,
        RunStatus.CANCELLED,
    }
)

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(TERMINAL),
    **{status: frozenset() for status in TERMINAL},
}

STEP_TERMINAL: frozenset[StepStatus] = frozenset(
    {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED}
)

# Statuses a failure handler may watch (automation-failure trigger, SPEC 2.1).
WATCHABLE: frozenset[RunStatus] = frozenset(TERMINAL - {RunStatus.CANCELLED, RunStatus.COMPLETED})


def can_transition(current: RunStatus, requested: RunStatus) -> bool:
    """True when the run may move from `current` to `requested`."""
    return requested in TRANSITIONS[current]


def is_terminal(status: RunStatus) -> bool:
    """True for statuses that never change again."""
    return status in TERMINAL
