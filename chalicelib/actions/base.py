"""What every action handler receives (ActionContext) and may return (output, Halt, Wait)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ..domain.clock import utcnow
from ..domain.retry import ActionError
from ..settings import Settings

DEFAULT_TIMEOUT_S = 30.0
MAX_CALL_DEPTH = 10


class Props(BaseModel):
    """Base of the action props models: camelCase keys, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Output(BaseModel):
    """Base of the action output models: the documented shape of a step's output (the test
    suite checks every output an action returns against its model)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


@dataclass(frozen=True)
class Halt:
    """Stop the run here as `completed`; later steps are skipped (filter/continue false)."""

    output: Any


@dataclass(frozen=True)
class Wait:
    """Park the step until `until`; the executor resumes it with `wait_started_at` set."""

    until: datetime


ClientFactory = Callable[[str, float], Any]  # (service, timeout_s) -> boto3 client
StartRun = Callable[[str, Any], str]  # (automation name, trigger data) -> run id


class Boto3Clients:
    """boto3 clients created lazily and cached per (service, timeout); endpoints from the env."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()
        self._session: Any = None

    def __call__(self, service: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        key = (service, max(1, int(timeout_s)))
        with self._lock:  # boto3 sessions are not safe to share while creating clients
            if key not in self._clients:
                self._clients[key] = self._create(service, key[1])
            return self._clients[key]

    def _create(self, service: str, timeout_s: int) -> Any:
        import boto3  # noqa: PLC0415 - no AWS imports until an action needs a client
        from botocore.config import Config  # noqa: PLC0415

        if self._session is None:
            self._session = boto3.session.Session()
        # SDK retries are off: the step's retry policy is the one contract for attempts.
        config = Config(
            connect_timeout=min(timeout_s, 10),
            read_timeout=timeout_s,
            retries={"total_max_attempts": 1},
        )
        return self._session.client(service, region_name=self._settings.region, config=config)


@dataclass
class ActionContext:
    """One attempt of one step, as its handler sees it. `props` are already rendered."""

    run_id: str
    step_name: str
    props: dict[str, Any]
    settings: Settings
    automation_name: str = ""
    attempt: int = 1
    depth: int = 0  # automation/call nesting of this run
    timeout_s: float = DEFAULT_TIMEOUT_S  # the step's attempt timeout
    deadline: datetime | None = None  # the run's deadline, when it has one
    data: dict[str, Any] = field(default_factory=dict)  # {trigger, steps, run}, no secrets
    clients: ClientFactory | None = None
    start_run: StartRun | None = None
    wait_started_at: datetime | None = None  # set when resuming a parked delay/wait
    woken_early: bool = False  # an operator ended the wait (retry-now): it is over now
    now: Callable[[], datetime] = utcnow

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts and redeliveries: `runId:stepName`."""
        return f"{self.run_id}:{self.step_name}"

    def remaining_s(self) -> float:
        """Seconds this attempt may still take: its timeout, capped by the run deadline."""
        if self.deadline is None:
            return self.timeout_s
        left = (self.deadline - self.now()).total_seconds()
        if left <= 0:
            raise ActionError("run deadline passed", "Timeout", retryable=False, timed_out=True)
        return min(self.timeout_s, left)

    def client(self, service: str) -> Any:
        """A boto3 client for `service` with this step's attempt timeout."""
        if self.clients is None:
            self.clients = Boto3Clients(self.settings)
        return self.clients(service, self.timeout_s)

    def after(self, ms: int) -> datetime:
        """`now + ms`."""
        return self.now() + timedelta(milliseconds=ms)
