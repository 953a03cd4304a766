"""Webhook rate limits: a token bucket kept as one number, its theoretical arrival time.

The generic cell rate algorithm (GCRA) is a token bucket of `burst` tokens refilled at one
token every `interval_us`, stored as the single time `tat` at which the bucket would be full
again: a request at `now` is admitted when `max(tat, now) - now <= (burst - 1) * interval_us`,
and moves `tat` to `max(tat, now) + interval_us`. One stored number means one conditional
write decides (no read-modify-write of two fields), on DynamoDB as on SQLite.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

MICROS = 1_000_000


@dataclass(frozen=True)
class Allowance:
    """One token every `interval_us` microseconds, at most `burst` at once."""

    interval_us: int
    burst: int

    @classmethod
    def per_minute(cls, runs: int, burst: int) -> "Allowance":
        """`runs` a minute in steady state, `burst` back to back from a full bucket."""
        return cls(interval_us=max(1, round(60 * MICROS / runs)), burst=burst)

    @property
    def tolerance_us(self) -> int:
        """How far ahead of now the arrival time may run: the burst beyond the first token."""
        return (self.burst - 1) * self.interval_us


@dataclass(frozen=True)
class Verdict:
    """Admitted, or refused with the whole seconds to wait before a token is back."""

    admitted: bool
    retry_after_s: int = 0


def micros(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime (integers: exact in both stores)."""
    return round(moment.timestamp() * MICROS)


def admit(tat_us: int | None, now_us: int, allowance: Allowance) -> tuple[Verdict, int | None]:
    """The decision for one request, and the arrival time to store (None when refused).

    `tat_us` is the stored arrival time (None: no bucket yet, i.e. full)."""
    base = now_us if tat_us is None else max(tat_us, now_us)
    if base - now_us > allowance.tolerance_us:
        return refused(base, now_us, allowance), None
    return Verdict(True), base + allowance.interval_us


def refused(tat_us: int, now_us: int, allowance: Allowance) -> Verdict:
    """A refusal, waiting until `tat_us` is back within the tolerance (at least 1 s)."""
    wait_us = tat_us - allowance.tolerance_us - now_us
    return Verdict(False, max(1, math.ceil(wait_us / MICROS)))


def expiry_s(tat_us: int) -> int:
    """Epoch seconds after which a bucket at `tat_us` is full again, so may be forgotten."""
    return math.ceil(tat_us / MICROS) + 1
