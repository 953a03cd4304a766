"""The run transition table of SPEC section 3, written out pair by pair for the 8×8 tests
(not read from statuses.TRANSITIONS, so a change to the table fails them)."""
from __future__ import annotations

from chalicelib.domain.statuses import RunStatus

TERMINAL_STATUSES = (RunStatus.COMPLETED, RunStatus.COMPLETED_WITH_ERRORS, RunStatus.FAILED,
                     RunStatus.TIMED_OUT, RunStatus.EXHAUSTED, RunStatus.CANCELLED)

LEGAL: frozenset[tuple[RunStatus, RunStatus]] = frozenset(
    {(RunStatus.PENDING, RunStatus.RUNNING), (RunStatus.PENDING, RunStatus.CANCELLED)}
    | {(RunStatus.RUNNING, status) for status in TERMINAL_STATUSES}
)

# Every (from, to) pair of the eight statuses, 64 in all, legal or not.
PAIRS = [(current, requested) for current in RunStatus for requested in RunStatus]


def pair_id(pair: tuple[RunStatus, RunStatus]) -> str:
    current, requested = pair
    verdict = "legal" if pair in LEGAL else "illegal"
    return f"{current.value}->{requested.value}:{verdict}"
