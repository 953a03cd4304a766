"""In-memory twins of the ports: the same contract as the AWS adapters, for fast tests."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..domain.batches import (
    Batch, BatchNotFound, BatchPage, StaleBatch, batch_from_record, batch_to_record,
    with_page,
)
from ..domain.errors import (
    AlreadyExists, InvalidTransition, RunNotFound, StaleRun, StepConflict,
)
from ..domain.model import Event, Run, RunFilter, RunSlice, Step
from ..domain.rate_limit import Allowance, Verdict, admit
from ..domain.statuses import RunStatus, StepStatus
from ..services.ports import TokenRecord


class MemoryRunRepository:
    """RunRepository kept in dicts, guarded by one lock (races behave as in DynamoDB)."""

    def __init__(self, clock=time.time) -> None:
        self._runs: dict[str, Run] = {}
        self._steps: dict[str, dict[int, Step]] = {}
        self._lock = threading.RLock()
        self._clock = clock

    def _live(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None or (run.expires_at is not None and run.expires_at <= self._clock()):
            raise RunNotFound(run_id)
        return run

    def create_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        with self._lock:
            if run.id in self._runs:
                raise AlreadyExists(f"run {run.id} exists", status=self._runs[run.id].status.value)
            self._runs[run.id] = replace(run, version=1)
            self._steps[run.id] = {step.index: step for step in steps}

    def get_run(self, run_id: str) -> Run:
        with self._lock:
            return self._live(run_id)

    def get_detail(self, run_id: str) -> tuple[Run, list[Step]]:
        with self._lock:
            run = self._live(run_id)
            steps = self._steps.get(run_id, {})
            return run, [steps[i] for i in sorted(steps)]

    def update_run(
        self, run: Run, *, expected_status: RunStatus, event: Event | None = None
    ) -> Run:
        with self._lock:
            current = self._live(run.id)
            # The domain (Run.transition) decided the status; the write is conditional on it.
            if current.status != expected_status:
                raise InvalidTransition(run.id, current.status.value, run.status.value)
            if current.version != run.version:
                raise StaleRun(current)
            events = current.events + ((event,) if event else ())
            # Only the mutable fields change, as in the DynamoDB and SQLite adapters.
            stored = replace(run, events=events, version=current.version + 1,
                             definition=current.definition, trigger_data=current.trigger_data,
                             automation_name=current.automation_name,
                             trigger_type=current.trigger_type, created_at=current.created_at,
                             replay_of=current.replay_of, search_keys=current.search_keys)
            self._runs[run.id] = stored
            return stored

    def claim_step(
        self, run_id: str, step: Step, *, token: str, now: datetime, lease_until: datetime
    ) -> Step:
        with self._lock:
            # Conditional on the step alone (one item per write on DynamoDB).
            stored = self._steps.setdefault(run_id, {}).get(step.index)
            if stored is not None and not _claimable(stored, now):
                raise StepConflict(run_id, step.index, stored.status.value)
            claimed = replace(
                step,
                status=StepStatus.RUNNING,
                claim_token=token,
                attempt=(stored.attempt if stored else 0) + 1,
                attempts=stored.attempts if stored else step.attempts,
                started_at=stored.started_at if stored and stored.started_at else step.started_at,
                next_attempt_at=None,
                lease_until=lease_until,
            )
            self._steps[run_id][step.index] = claimed
            return claimed

    def write_step(
        self,
        run_id: str,
        step: Step,
        *,
        expect: Collection[StepStatus | None],
        token: str | None = None,
    ) -> Step:
        with self._lock:
            stored = self._steps.setdefault(run_id, {}).get(step.index)
            status = stored.status if stored else None
            if status not in expect or (
                token is not None and (stored is None or stored.claim_token != token)
            ):
                raise StepConflict(run_id, step.index, status.value if status else None)
            written = replace(step, lease_until=None)
            self._steps[run_id][step.index] = written
            return written

    def _matching(self, filt: RunFilter) -> list[Run]:
        now = self._clock()
        runs = [
            run
            for run in self._runs.values()
            if filt.matches(run) and (run.expires_at is None or run.expires_at > now)
        ]
        runs.sort(key=lambda run: run.sort_key, reverse=True)
        return runs

    def list_runs(
        self, filt: RunFilter, *, limit: int, after: str | None = None, offset: int = 0
    ) -> RunSlice:
        with self._lock:
            runs = self._matching(filt)
            if after is not None:
                runs = [run for run in runs if run.sort_key < after]
            runs = runs[offset:]
            return RunSlice(runs=runs[:limit], has_more=len(runs) > limit)

    def count_runs(self, filt: RunFilter) -> int:
        with self._lock:
            if not (filt.since or filt.until or filt.replay_of or filt.waiting or filt.data):
                # Like the stored counters: an expired run counts until it is deleted.
                return sum(1 for run in self._runs.values() if filt.matches(run))
            return len(self._matching(filt))

    def runs_in_status(self, status: RunStatus, *, automation_name: str | None = None,
                       limit: int = 100, oldest_first: bool = True) -> list[Run]:
        with self._lock:
            runs = self._matching(RunFilter(automation_name=automation_name, statuses=(status,)))
            if oldest_first:
                runs.reverse()
            return runs[:limit]

    def expired_runs(self, now: datetime, limit: int) -> list[str]:
        epoch = now.timestamp()
        with self._lock:
            runs = sorted((run for run in self._runs.values()
                           if run.expires_at is not None and run.expires_at <= epoch),
                          key=lambda run: run.sort_key)
            return [run.id for run in runs[:limit]]

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
            self._steps.pop(run_id, None)


def _claimable(stored: Step, now: datetime) -> bool:
    if stored.status == StepStatus.PENDING:
        return True
    if stored.status != StepStatus.RUNNING:
        return False
    if stored.lease_until is not None and stored.lease_until > now:
        return False
    return stored.next_attempt_at is None or stored.next_attempt_at <= now


class MemoryMarkers:
    """Markers in a dict with expiry times."""

    def __init__(self, clock=time.time) -> None:
        self._items: dict[str, tuple[dict[str, Any], float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def put_once(self, key: str, value: dict[str, Any], ttl_seconds: int) -> dict[str, Any] | None:
        with self._lock:
            existing = self._items.get(key)
            if existing and existing[1] > self._clock():
                return existing[0]
            self._items[key] = (dict(value), self._clock() + ttl_seconds)
            return None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            existing = self._items.get(key)
            return existing[0] if existing and existing[1] > self._clock() else None

    def delete(self, key: str, only_if: dict[str, Any] | None = None) -> bool:
        with self._lock:
            existing = self._items.get(key)
            if existing is None or (only_if is not None and existing[0] != only_if):
                return False
            del self._items[key]
            return True


class MemoryTokenStore:
    def __init__(self) -> None:
        self._items: dict[str, TokenRecord] = {}
        self._hashes: dict[str, str] = {}  # token id -> hash

    def put(self, token_hash: str, record: TokenRecord) -> None:
        old = self._items.get(token_hash)
        if old is not None:
            self._hashes.pop(old.token_id, None)
        self._items[token_hash] = record
        self._hashes[record.token_id] = token_hash

    def find(self, token_hash: str) -> TokenRecord | None:
        return self._items.get(token_hash)

    def list(self) -> list[TokenRecord]:
        return [self._items[h] for _, h in sorted(self._hashes.items())]

    def revoke(self, token_id: str) -> bool:
        token_hash = self._hashes.pop(token_id, None)
        return token_hash is not None and self._items.pop(token_hash, None) is not None

    def touch(self, token_id: str, at: datetime) -> None:
        token_hash = self._hashes.get(token_id)
        if token_hash is not None:
            self._items[token_hash] = replace(self._items[token_hash], last_used_at=at)


class MemoryQueue:
    """A queue that keeps what was sent, with the delay asked for; sends repeating a
    `dedup_id` are dropped, as a FIFO queue does."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], int]] = []
        self.visibility: dict[str, int] = {}  # receipt handle → last visibility asked for
        self._dedup_ids: set[str] = set()
        self._lock = threading.Lock()

    def send(self, body: dict[str, Any], delay_seconds: int = 0,
             dedup_id: str | None = None) -> str:
        with self._lock:
            if dedup_id is None or dedup_id not in self._dedup_ids:
                self.messages.append((body, delay_seconds))
            if dedup_id is not None:
                self._dedup_ids.add(dedup_id)
        return str(uuid.uuid4())

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        with self._lock:
            self.visibility[receipt_handle] = seconds

    def drain(self) -> list[tuple[dict[str, Any], int]]:
        with self._lock:
            taken, self.messages = self.messages, []
        return taken


class MemoryBlobStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def get(self, key: str) -> bytes:
        return self.objects[key]


class MemorySlots:
    """Slots as a set of run ids per automation, behind one lock."""

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def acquire(self, automation: str, run_id: str, limit: int) -> bool:
        with self._lock:
            held = self._held.setdefault(automation, set())
            if run_id in held:
                return True
            if len(held) >= limit:
                return False
            held.add(run_id)
            return True

    def release(self, automation: str, run_id: str) -> None:
        with self._lock:
            self._held.get(automation, set()).discard(run_id)

    def holders(self, automation: str) -> set[str]:
        with self._lock:
            return set(self._held.get(automation, set()))


class MemoryBatchStore:
    """Batches and their pages in dicts, behind one lock (an advance is atomic)."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._pages: dict[str, dict[int, BatchPage]] = {}
        self._lock = threading.Lock()

    def create(self, batch: Batch) -> None:
        with self._lock:
            if batch.id in self._records:
                raise AlreadyExists(f"batch {batch.id} exists", batch_id=batch.id)
            self._records[batch.id] = batch_to_record(batch)
            self._pages[batch.id] = {}

    def get(self, batch_id: str) -> Batch:
        with self._lock:
            if batch_id not in self._records:
                raise BatchNotFound(batch_id)
            return batch_from_record(self._records[batch_id],
                                     list(self._pages[batch_id].values()))

    def advance(self, batch: Batch, *, expected_version: int,
                page: BatchPage | None = None) -> Batch:
        with self._lock:
            stored = self._records.get(batch.id)
            if stored is None:
                raise BatchNotFound(batch.id)
            if stored["version"] != expected_version:
                raise StaleBatch(batch.id, expected_version)
            self._records[batch.id] = batch_to_record(batch.evolve(version=expected_version + 1))
            if page is not None:
                self._pages[batch.id][page.index] = page
        return with_page(batch.evolve(version=expected_version + 1), page)


class MemoryRateLimiter:
    """Buckets as arrival times in a dict, decided behind one lock."""

    def __init__(self) -> None:
        self._tat: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, key: str, allowance: Allowance, now_us: int) -> Verdict:
        with self._lock:
            verdict, tat = admit(self._tat.get(key), now_us, allowance)
            if tat is not None:
                self._tat[key] = tat
            return verdict
