"""The run repository's boundary (SPEC 7): every value it writes (trigger data, outputs, errors,
attempts, events) passes through the one redactor first, whichever backend stores it.

Wraps any RunRepository, so the DynamoDB adapter, its in-memory twin and any later backend get
the same guarantee without each knowing about secrets.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from ..domain.model import Event, Run, Step
from ..domain.search import declared_index, search_keys
from ..domain.statuses import RunStatus, StepStatus


class RedactingRunRepository:
    """A RunRepository that redacts what it is given before the inner one stores it."""

    def __init__(self, inner, redact) -> None:
        self.inner = inner
        self._redact = redact

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # reads, counts, client hooks, ...

    def _event(self, event: Event | None) -> Event | None:
        if event is None:
            return None
        return Event(at=event.at, type=event.type, from_status=event.from_status,
                     to_status=event.to_status, actor=event.actor,
                     detail=self._redact(event.detail))

    def _run(self, run: Run) -> Run:
        return run.evolve(trigger_data=self._redact(run.trigger_data),
                          error=self._redact(run.error),
                          events=tuple(self._event(e) for e in run.events))

    def _step(self, step: Step) -> Step:
        return step.evolve(output=self._redact(step.output), error=self._redact(step.error),
                           attempts=tuple(self._redact(list(step.attempts))))

    def create_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        stored = self._run(run)
        # Search keys come from the trigger data as stored, whatever the caller set: a secret
        # in an indexed field is redacted first, and a redacted value is not indexed.
        stored = stored.evolve(search_keys=search_keys(declared_index(run.definition),
                                                       stored.trigger_data))
        self.inner.create_run(stored, [self._step(step) for step in steps])

    def update_run(self, run: Run, *, expected_status: RunStatus,
                   event: Event | None = None) -> Run:
        return self.inner.update_run(self._run(run), expected_status=expected_status,
                                     event=self._event(event))

    def claim_step(self, run_id: str, step: Step, **kwargs: Any) -> Step:
        return self.inner.claim_step(run_id, self._step(step), **kwargs)

    def write_step(self, run_id: str, step: Step, *, expect: Collection[StepStatus | None],
                   token: str | None = None) -> Step:
        return self.inner.write_step(run_id, self._step(step), expect=expect, token=token)
