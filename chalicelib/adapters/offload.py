"""Large payloads: trigger data and step outputs over the item budget live in the blob store
(S3), with a reference in the DynamoDB item. A run's detail returns them whole; a list
shows an offloaded trigger payload as `{"$offloaded": {"bytes": n}}` (never cut silently), so
a page of runs stays small and costs no S3 reads.

Wraps any RunRepository, so the DynamoDB adapter and its in-memory twin share the behaviour.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from ..domain.errors import StaleRun
from ..domain.model import Event, Run, RunFilter, RunSlice, Step
from ..domain.statuses import RunStatus, StepStatus

REF = "$blob"


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


class OffloadingRunRepository:
    """A RunRepository that moves values over `budget_bytes` to `blobs`."""

    def __init__(self, inner, blobs, budget_bytes: int) -> None:
        self.inner = inner
        self._blobs = blobs
        self._budget = budget_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # count_runs, client hooks, ...

    # -- writing -------------------------------------------------------------------------
    def _stash(self, run_id: str, what: str, value: Any) -> Any:
        data = _encode(value)
        if len(data) <= self._budget:
            return value
        key = f"runs/{run_id}/{what}-{uuid.uuid4().hex}.json"
        self._blobs.put(key, data)
        return {REF: key, "bytes": len(data)}

    def _stash_step(self, run_id: str, step: Step) -> Step:
        # An error can be large too (an HTTP error keeps the response body).
        return step.evolve(
            output=self._stash(run_id, f"step-{step.index}", step.output),
            error=self._stash(run_id, f"step-{step.index}-error", step.error),
        )

    def create_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        stored = run.evolve(trigger_data=self._stash(run.id, "trigger", run.trigger_data))
        self.inner.create_run(stored, [self._stash_step(run.id, step) for step in steps])

    def write_step(self, run_id: str, step: Step, *, expect: Collection[StepStatus | None],
                   token: str | None = None) -> Step:
        self.inner.write_step(run_id, self._stash_step(run_id, step), expect=expect, token=token)
        return step.evolve(lease_until=None)

    def claim_step(self, run_id: str, step: Step, **kwargs: Any) -> Step:
        claimed = self.inner.claim_step(run_id, self._stash_step(run_id, step), **kwargs)
        return self._load_step(run_id, claimed)

    def update_run(self, run: Run, *, expected_status: RunStatus,
                   event: Event | None = None) -> Run:
        try:
            stored = self.inner.update_run(run, expected_status=expected_status, event=event)
        except StaleRun as exc:
            raise StaleRun(self._load_run(exc.stored)) from exc
        return stored.evolve(trigger_data=run.trigger_data)

    # -- reading -------------------------------------------------------------------------
    def _load(self, run_id: str, value: Any) -> Any:
        if not _is_ref(run_id, value):
            return value  # payload data that merely looks like a reference stays data
        try:
            return json.loads(self._blobs.get(value[REF]))
        except KeyError:  # the bucket's lifecycle removed it (retention shortened later)
            return {"$offloaded": {"bytes": value["bytes"], "expired": True}}

    def _load_run(self, run: Run) -> Run:
        return run.evolve(trigger_data=self._load(run.id, run.trigger_data))

    def _load_step(self, run_id: str, step: Step) -> Step:
        # Reused steps were stashed again under the replay's own id when it was created.
        return step.evolve(output=self._load(run_id, step.output),
                           error=self._load(run_id, step.error))

    def get_run(self, run_id: str) -> Run:
        return self._load_run(self.inner.get_run(run_id))

    def get_detail(self, run_id: str) -> tuple[Run, list[Step]]:
        run, steps = self.inner.get_detail(run_id)
        return self._load_run(run), [self._load_step(run_id, step) for step in steps]

    def list_runs(self, filt: RunFilter, **kwargs: Any) -> RunSlice:
        page = self.inner.list_runs(filt, **kwargs)
        return RunSlice(runs=[self._summary(run) for run in page.runs], has_more=page.has_more)

    @staticmethod
    def _summary(run: Run) -> Run:
        """A listed run: an offloaded trigger payload is named, not fetched."""
        if _is_ref(run.id, run.trigger_data):
            return run.evolve(trigger_data={"$offloaded": {"bytes": run.trigger_data["bytes"]}})
        return run


def _is_ref(run_id: str, value: Any) -> bool:
    """True for a reference this wrapper wrote for the run (not data that looks like one)."""
    return isinstance(value, dict) and set(value) == {REF, "bytes"} and \
        str(value[REF]).startswith(f"runs/{run_id}/")
