"""A fault plan for the container's fault seam (chalicelib/faults.py): crashes at named points,
throttled port calls and lost answers, either aimed at one point or drawn from a seeded RNG."""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from chalicelib.faults import Faults

T = TypeVar("T")

# Port calls that change something: only these can lose their answer after taking effect.
WRITES = frozenset({
    "repo.create_run", "repo.update_run", "repo.claim_step", "repo.write_step",
    "repo.delete_run", "markers.put_once", "markers.delete", "slots.acquire", "slots.release",
    "step_queue.send", "exhausted_queue.send",
})
# Calls never failed at random: the test's own bookkeeping on the twins.
UNFAULTED = frozenset({"step_queue.drain", "exhausted_queue.drain", "slots.holders"})


class Crash(BaseException):
    """The Lambda died here (timeout, out of memory): nothing after this point runs."""


class LostAnswer(Exception):
    """The call took effect, but its answer never came back (a timeout after the write)."""


def throttled(name: str) -> ClientError:
    """What DynamoDB or SQS answers once botocore's own retries gave up."""
    code = "ThrottlingException" if "queue" in name else "ProvisionedThroughputExceededException"
    return ClientError({"Error": {"Code": code, "Message": f"{name} throttled (injected)"}},
                       name.rsplit(".", 1)[-1])


class FaultPlan(Faults):
    """Aimed faults (`crash_at`, `throttle`, `lose`) fire the next times their point is
    reached; random ones fire with the given rates while `enabled`. `injected` counts both."""

    active = True

    def __init__(self, seed: int = 0, *, crash: float = 0.0, throttle: float = 0.0,
                 lost: float = 0.0, hot: dict[str, float] | None = None) -> None:
        self.rng = random.Random(seed)
        self.rates = {"crash": crash, "throttle": throttle, "lost": lost}
        self.hot = hot or {}  # crash rate by point-name prefix, where rare paths need more
        self.enabled = True
        self.injected: Counter[str] = Counter()
        self.reached: Counter[str] = Counter()
        self._aimed: dict[tuple[str, str], int] = {}

    def crash_at(self, point: str, times: int = 1) -> None:
        self._aimed[("crash", point)] = times

    def throttle(self, call: str, times: int = 1) -> None:
        self._aimed[("throttle", call)] = times

    def lose(self, call: str, times: int = 1) -> None:
        self._aimed[("lost", call)] = times

    def _fires(self, kind: str, name: str) -> bool:
        left = self._aimed.get((kind, name), 0)
        if left:
            self._aimed[(kind, name)] = left - 1
        elif not (self.enabled and name not in UNFAULTED
                  and self.rng.random() < self._rate(kind, name)):
            return False
        self.injected[kind] += 1
        self.injected[f"{kind}:{name}"] += 1
        return True

    def _rate(self, kind: str, name: str) -> float:
        if kind == "crash":
            for prefix, rate in self.hot.items():
                if name.startswith(prefix):
                    return rate
        return self.rates[kind]

    def point(self, name: str) -> None:
        self.reached[name] += 1
        if self._fires("crash", name):
            raise Crash(name)

    def call(self, name: str, call: Callable[[], T]) -> T:
        self.reached[name] += 1
        if self._fires("throttle", name):
            raise throttled(name)
        if name not in WRITES and self._fires("crash", name):
            raise Crash(name)  # died waiting for a read
        answer = call()
        if name in WRITES:
            if self._fires("crash", name):
                raise Crash(name)  # died while the write was answered
            if self._fires("lost", name):
                raise LostAnswer(name)
        return answer
