"""Builds the services' dependencies once per cold start; every one overridable in tests."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .faults import NO_FAULTS, Faults, FaultyPort
from .settings import Settings, get_settings

# The ports whose calls pass through the fault hooks when a fault plan is installed.
FAULTY_PORTS = frozenset({"repo", "markers", "slots", "step_queue", "exhausted_queue",
                          "batches"})


@dataclass
class Container:
    """Lazily built dependencies. Pass overrides (e.g. in-memory twins) as keyword arguments."""

    settings: Settings = field(default_factory=get_settings)
    overrides: dict[str, Any] = field(default_factory=dict)
    _built: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def _get(self, name: str, build: Callable[[], Any]) -> Any:
        if name in self.overrides and not (name in FAULTY_PORTS and self.faults.active):
            return self.overrides[name]
        with self._lock:
            if name not in self._built:
                port = self.overrides[name] if name in self.overrides else build()
                if name in FAULTY_PORTS and self.faults.active:
                    port = FaultyPort(port, name, self.faults)
                self._built[name] = port
            return self._built[name]

    @property
    def sqlite(self):
        """The SQLite database file (RUNS_DB) behind every store when RUNS_BACKEND=sqlite."""
        from .adapters.sqlite_db import open_database

        return self._get("sqlite", lambda: open_database(self.settings.runs_db))

    @property
    def faults(self) -> Faults:
        """The fault-injection hooks (tests/reliability); no-ops unless overridden."""
        return self.overrides.get("faults", NO_FAULTS)

    @property
    def repo(self):
        """The run repository, behind the redactor whatever the backend (or a test's twin)."""
        from .adapters.redacting import RedactingRunRepository

        return self._get("redacting_repo",
                         lambda: RedactingRunRepository(self._stored_repo(), self.redactor))

    def _stored_repo(self):
        if self.settings.uses_sqlite:
            # Large values stay inline: SQLite has no per-KB write price nor item size limit.
            from .adapters.sqlite_repository import SqliteRunRepository

            return self._get("repo", lambda: SqliteRunRepository(
                self.sqlite, retention_days=self.settings.retention_days))
        from .adapters.dynamo_repository import DynamoRunRepository
        from .adapters.offload import OffloadingRunRepository

        return self._get("repo", lambda: OffloadingRunRepository(
            DynamoRunRepository(self.settings), self.blobs, self.settings.item_budget_bytes))

    @property
    def secrets(self):
        """Where `{{secrets.NAME}}` is read (settings.secrets_backend)."""
        from .adapters.secrets import secret_source

        return self._get("secrets", lambda: secret_source(self.settings))

    @property
    def redactor(self):
        """The process's one redactor, knowing every secret of this container's source."""
        from .observability import redactor

        source = self.secrets
        redactor.use(source.values)
        return redactor

    @property
    def markers(self):
        if self.settings.uses_sqlite:
            from .adapters.sqlite_stores import SqliteMarkers

            return self._get("markers", lambda: SqliteMarkers(self.sqlite))
        from .adapters.dynamo_markers import DynamoMarkers

        return self._get("markers", lambda: DynamoMarkers(self.settings))

    @property
    def tokens(self):
        if self.settings.uses_sqlite:
            from .adapters.sqlite_stores import SqliteTokenStore

            return self._get("tokens", lambda: SqliteTokenStore(self.sqlite))
        from .adapters.dynamo_markers import DynamoTokenStore

        return self._get("tokens", lambda: DynamoTokenStore(self.settings))

    @property
    def batches(self):
        """Bulk replay/cancel batches (BatchStore), next to the runs."""
        if self.settings.uses_sqlite:
            from .adapters.sqlite_batches import SqliteBatchStore

            return self._get("batches", lambda: SqliteBatchStore(
                self.sqlite, retention_days=self.settings.retention_days))
        from .adapters.dynamo_batches import DynamoBatchStore

        return self._get("batches", lambda: DynamoBatchStore(self.settings))

    @property
    def slots(self):
        if self.settings.uses_sqlite:
            from .adapters.sqlite_stores import SqliteSlots

            return self._get("slots", lambda: SqliteSlots(self.sqlite))
        from .adapters.dynamo_slots import DynamoSlots

        return self._get("slots", lambda: DynamoSlots(self.settings))

    @property
    def rate_limiter(self):
        """Webhook rate limits (token buckets in the store)."""
        if self.settings.uses_sqlite:
            from .adapters.sqlite_stores import SqliteRateLimiter

            return self._get("rate_limiter", lambda: SqliteRateLimiter(self.sqlite))
        from .adapters.dynamo_rate_limits import DynamoRateLimiter

        return self._get("rate_limiter", lambda: DynamoRateLimiter(self.settings))

    @property
    def step_queue(self):
        return self._get("step_queue", lambda: self._queue(self.settings.step_queue))

    @property
    def exhausted_queue(self):
        return self._get("exhausted_queue", lambda: self._queue(self.settings.exhausted_queue))

    def _queue(self, name: str):
        """SQS, or the queue table of the SQLite database file."""
        if self.settings.uses_sqlite:
            from .adapters.sqlite_queue import SqliteQueue

            return SqliteQueue(name, self.sqlite, region=self.settings.region)
        from .adapters.sqs_queue import SqsQueue

        return SqsQueue(name, self.settings)

    @property
    def blobs(self):
        from .adapters.s3_blobs import S3BlobStore

        return self._get("blobs", lambda: S3BlobStore(self.settings))

    @property
    def catalog(self):
        from .domain.definitions import load_catalog

        return self._get(
            "catalog", lambda: load_catalog(self.settings.automations_dir, self.actions)
        )

    @property
    def actions(self):
        from .actions.registry import default_registry

        return self._get("actions", default_registry)

    @property
    def clock(self):
        from .domain.clock import utcnow

        return self._get("clock", lambda: utcnow)


_container: Container | None = None
_container_lock = threading.Lock()


def container() -> Container:
    """The container of this cold start."""
    global _container
    with _container_lock:
        if _container is None:
            _container = Container()
        return _container


def check_definitions() -> None:
    """Load and validate the automation definitions now; DefinitionError names each problem."""
    container().catalog


def use_container(new: Container | None) -> None:
    """Replace the container (tests, the local stack); None rebuilds it on next use."""
    global _container
    with _container_lock:
        _container = new
