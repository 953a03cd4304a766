"""The fault-injection seam: named points where a fault plan may crash the process, throttle a
port call or lose its answer.

Production carries `NO_FAULTS`, whose hooks do nothing. The reliability suite hands the
container a seeded plan (tests/support/faults.py); the container then passes every port call
through `Faults.call` (FaultyPort) and the executor, admission and follow-ups call
`Faults.point` at the places a Lambda may die.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Faults:
    """No faults: every hook is a no-op."""

    active = False

    def point(self, name: str) -> None:
        """A named point in a service (e.g. `executor.after_claim`); a plan may crash here."""

    def call(self, name: str, call: Callable[[], T]) -> T:
        """A port call (e.g. `repo.update_run`); a plan may fail it before it runs (throttled)
        or after (its answer lost)."""
        return call()


NO_FAULTS = Faults()


class FaultyPort:
    """A port whose public method calls pass through `faults.call("<port>.<method>", ...)`."""

    def __init__(self, port: Any, name: str, faults: Faults) -> None:
        self._port = port
        self._name = name
        self._faults = faults

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._port, attribute)
        if attribute.startswith("_") or not callable(value):
            return value
        point = f"{self._name}.{attribute}"

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._faults.call(point, lambda: value(*args, **kwargs))

        return call
