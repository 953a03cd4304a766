"""The ports the services use; each has an AWS adapter and an in-memory twin in adapters/."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..domain.batches import Batch, BatchPage
from ..domain.model import Event, Run, RunFilter, RunSlice, Step
from ..domain.rate_limit import Allowance, Verdict
from ..domain.statuses import RunStatus, StepStatus


class RunRepository(Protocol):
    """Runs and their steps (one partition per run). Every status change is conditional."""

    def create_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        """Store a new run (and any pre-recorded steps, e.g. reused by replay) atomically.

        Raises AlreadyExists when a run with this id exists.
        """

    def get_run(self, run_id: str) -> Run:
        """The run item; RunNotFound when missing or past its expiry."""

    def get_detail(self, run_id: str) -> tuple[Run, list[Step]]:
        """The run and its recorded steps in index order, in one read."""

    def update_run(
        self, run: Run, *, expected_status: RunStatus, event: Event | None = None
    ) -> Run:
        """Write the run's mutable fields if its stored status is still `expected_status`
        and its version is still `run.version`.

        Persists what the domain decided: a status change comes from `Run.transition`,
        which checks the table and builds `event`; the adapter does not check the table.
        Appends `event` to the audit trail in the same write. Raises InvalidTransition
        (carrying the current status) when the stored status differs, StaleRun (with the
        stored run) when only the version does.
        """

    def claim_step(
        self, run_id: str, step: Step, *, token: str, now: datetime, lease_until: datetime
    ) -> Step:
        """Claim a step for one attempt: allowed when it is absent or pending, or running
        with no live lease (lease expired, or waiting for a retry that is due at `now`).

        Stores `step` with status running, `claim_token=token`, attempt + 1 and the lease.
        Raises StepConflict (with the stored status) otherwise.
        """

    def write_step(
        self,
        run_id: str,
        step: Step,
        *,
        expect: Collection[StepStatus | None],
        token: str | None = None,
    ) -> Step:
        """Store `step` if the stored step's status is in `expect` (None = absent) and,
        when `token` is given, its claim token equals it. Clears the lease.
        Raises StepConflict otherwise.
        """

    def list_runs(
        self, filt: RunFilter, *, limit: int, after: str | None = None, offset: int = 0
    ) -> RunSlice:
        """Runs matching `filt`, newest first (`createdAt desc, id desc`).

        `after` is a `Run.sort_key`: return only runs strictly after it in that order.
        `offset` skips that many matching runs first (page paging).
        """

    def count_runs(self, filt: RunFilter) -> int:
        """The exact number of runs matching `filt`."""

    def runs_in_status(self, status: RunStatus, *, automation_name: str | None = None,
                       limit: int = 100, oldest_first: bool = True) -> list[Run]:
        """Runs in one status (for the sweeper and FIFO admission), oldest first by default."""

    def expired_runs(self, now: datetime, limit: int) -> list[str]:
        """Ids of at most `limit` runs whose expiry is at or before `now`, oldest first."""

    def delete_run(self, run_id: str) -> None:
        """Delete the run and its steps (the counters follow); a no-op when it is gone."""


class Markers(Protocol):
    """First-writer-wins records with an expiry: idempotency keys, cron minutes, dedup keys."""

    def put_once(self, key: str, value: dict[str, Any], ttl_seconds: int) -> dict[str, Any] | None:
        """Store `value` under `key` unless a live one exists; return the existing value or None."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The live value under `key`, or None."""

    def delete(self, key: str, only_if: dict[str, Any] | None = None) -> bool:
        """Forget `key` (so a retried delivery can proceed after its original failed); with
        `only_if`, only while the stored value still equals it. True when it was deleted."""


class RateLimiter(Protocol):
    """Token buckets by key (one per webhook automation), shared by every API function."""

    def take(self, key: str, allowance: Allowance, now_us: int) -> Verdict:
        """Take one token from `key`'s bucket at `now_us` (epoch microseconds), or refuse
        with the seconds until one is back. Exact under concurrent callers (each decision is
        one conditional write) and a constant number of store requests."""


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    role: str
    created_at: datetime
    description: str = ""  # the token's name
    expires_at: datetime | None = None  # None: never expires
    last_used_at: datetime | None = None  # recorded by the authorizer, at most once a minute


class TokenStore(Protocol):
    """API tokens, stored by the SHA-256 of the secret only; listed and revoked by id."""

    def put(self, token_hash: str, record: TokenRecord) -> None:
        """Store a token (replacing one with the same hash); listed from then on."""

    def find(self, token_hash: str) -> TokenRecord | None:
        """The token with this hash, or None (never issued, or revoked)."""

    def list(self) -> list[TokenRecord]:
        """Every token, by id, with when each was last used (a constant number of requests)."""

    def revoke(self, token_id: str) -> bool:
        """Forget the token: `find` no longer answers it. True when it existed."""

    def touch(self, token_id: str, at: datetime) -> None:
        """Record that the token was used at `at` (a no-op once it is revoked)."""


class MessageQueue(Protocol):
    """An SQS queue (step queue, exhausted-runs queue)."""

    def send(self, body: dict[str, Any], delay_seconds: int = 0,
             dedup_id: str | None = None) -> str:
        """Send a JSON message, delayed up to 900 s; returns the message id. Sends repeated
        with the same `dedup_id` deliver once (the exhausted-runs queue is FIFO)."""

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Hide a received message for `seconds` from now: the lease of a live attempt, or
        the short backoff after which a failed message comes back."""


class BlobStore(Protocol):
    """Large payloads kept outside the run items (S3)."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class Slots(Protocol):
    """Concurrency slots per automation, shared by every executor (conditional writes)."""

    def acquire(self, automation: str, run_id: str, limit: int) -> bool:
        """Take a slot for `run_id` if fewer than `limit` are held (idempotent per run)."""

    def release(self, automation: str, run_id: str) -> None:
        """Give back the run's slot; a no-op when it holds none."""

    def holders(self, automation: str) -> set[str]:
        """The runs holding a slot now."""


class BatchStore(Protocol):
    """Bulk replay/cancel batches: the record and one page item per worker step."""

    def create(self, batch: Batch) -> None:
        """Store a new batch; AlreadyExists when one with its id exists."""

    def get(self, batch_id: str) -> Batch:
        """The batch with every page's run ids and failures, in one read; BatchNotFound."""

    def advance(self, batch: Batch, *, expected_version: int,
                page: BatchPage | None = None) -> Batch:
        """Store `batch`'s progress (and `page`, atomically) if the stored version is still
        `expected_version`; the stored batch gets version + 1. StaleBatch otherwise."""
