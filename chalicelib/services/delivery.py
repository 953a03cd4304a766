"""The step message being processed: hidden from other consumers while an attempt holds its
step's lease, handed back soon when processing fails or the executor dies.

The queue's long visibility timeout (set for Lambda's event source) is never what brings a
message back: the worker hides the message for a short hold when it starts, the executor
extends that to an attempt's lease before claiming the step (so a dead executor's message
returns just after its lease expired, when the step can be claimed again), and a failed
message comes back after a short backoff counted from its receive count.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from ..observability import logger

INITIAL_HOLD_S = 60  # reading the run and writing before the first claim
# A hold extended for a lease reaches this far past it, so the next steps' claims in the same
# invocation rarely need another ChangeMessageVisibility.
HOLD_HEADROOM = timedelta(seconds=120)
BACKOFF_BASE_S = 5
BACKOFF_FACTOR = 3
MAX_BACKOFF_S = 900
LEASE_SLACK = timedelta(seconds=1)


def backoff_s(receive_count: int) -> int:
    """Seconds a failed message stays hidden before its next delivery: 5, 15, 45, 135, ..."""
    return min(MAX_BACKOFF_S, BACKOFF_BASE_S * BACKOFF_FACTOR ** max(0, receive_count - 1))


class Delivery:
    """One received step message: its receipt handle and how long it is hidden."""

    def __init__(self, queue, receipt_handle: str, receive_count: int, clock) -> None:
        self._queue = queue
        self._receipt = receipt_handle
        self._receive_count = receive_count
        self._clock = clock
        self._hidden_until: datetime | None = None
        self._lease_until: datetime | None = None
        self._managed = False

    def start(self) -> None:
        """Hide the message for the short initial hold. If that fails the message keeps the
        queue's own visibility timeout (longer than any lease), and is left to it."""
        try:
            self._hide(self._clock() + timedelta(seconds=INITIAL_HOLD_S))
        except Exception:  # noqa: BLE001 - visibility only shortens a redelivery
            logger.warning("message visibility not managed", exc_info=True)
            return
        self._managed = True

    def hold(self, lease_until: datetime) -> None:
        """Before a claim: keep the message hidden until the attempt's lease has expired."""
        until = lease_until + LEASE_SLACK
        if self._managed and (self._hidden_until is None or until > self._hidden_until):
            self._hide(until + HOLD_HEADROOM)  # raises: no claim without its hold
        self._lease_until = lease_until

    def released(self) -> None:
        """The attempt was recorded (or not claimed): no lease holds the message back."""
        self._lease_until = None

    def failed(self) -> None:
        """Processing raised: come back after the backoff, unless a lease still holds the
        step (then the message is hidden until it expires, or a redelivery could not claim)."""
        if self._lease_until is not None and self._lease_until > self._clock():
            return
        try:
            self._queue.change_visibility(self._receipt, backoff_s(self._receive_count))
        except Exception:  # noqa: BLE001 - the message still returns after its current hold
            logger.warning("visibility not shortened", exc_info=True)

    def _hide(self, until: datetime) -> None:
        seconds = math.ceil((until - self._clock()).total_seconds())
        self._queue.change_visibility(self._receipt, max(1, seconds))
        self._hidden_until = until


class NoDelivery:
    """A message not received from a queue (tests, direct calls): nothing to hide."""

    def start(self) -> None:
        """Nothing to hide."""

    def hold(self, lease_until: datetime) -> None:
        """Nothing to hide."""

    def released(self) -> None:
        """Nothing held."""

    def failed(self) -> None:
        """Nothing to hand back."""


NO_DELIVERY = NoDelivery()
