"""Contract fixtures: each test runs against the in-memory twin, DynamoDB on moto and SQLite."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from chalicelib.adapters.counters import StreamPoller
from chalicelib.adapters.dynamo_markers import DynamoMarkers, DynamoTokenStore
from chalicelib.adapters.dynamo_repository import DynamoRunRepository
from chalicelib.adapters.memory import MemoryMarkers, MemoryRunRepository, MemoryTokenStore
from chalicelib.adapters.sqlite_db import SqliteDatabase
from chalicelib.adapters.sqlite_repository import SqliteRunRepository
from chalicelib.adapters.sqlite_stores import SqliteMarkers, SqliteTokenStore
from chalicelib.domain.model import Run
from chalicelib.local.resources import create_resources
from chalicelib.settings import Settings


class FakeClock:
    """Epoch seconds that only move when a test says so (starts at the real time)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    """One implementation of the ports, plus the hooks a contract test needs."""

    name: str
    repo: Any
    markers: Any
    tokens: Any
    clock: FakeClock
    settle: Callable[[], Any]  # let asynchronous bookkeeping (stream counters) catch up
    sweep: Callable[[Run], None]  # what DynamoDB's TTL sweep does to an expired run


@pytest.fixture
def serialised_moto(monkeypatch):
    """DynamoDB applies each request atomically; moto's in-process backend does not lock,
    so requests are serialised here to make races behave as they do on AWS."""
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self, request):
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


def _memory_backend() -> Backend:
    clock = FakeClock()
    repo = MemoryRunRepository(clock=clock)
    return Backend("memory", repo, MemoryMarkers(clock=clock), MemoryTokenStore(), clock,
                   settle=lambda: None, sweep=lambda run: repo.delete_run(run.id))


def _dynamo_backend(settings) -> Backend:
    clock = FakeClock()
    repo = DynamoRunRepository(settings, clock=clock)
    poller = StreamPoller(settings)

    def sweep(run: Run) -> None:
        for raw in repo.tables.connection.query(run.id)["Items"]:
            repo.client.delete_item(TableName=settings.runs_table,
                                    Key={"pk": raw["pk"], "sk": raw["sk"]})

    return Backend("dynamo", repo, DynamoMarkers(settings, clock=clock),
                   DynamoTokenStore(settings), clock, settle=poller.drain, sweep=sweep)


def _sqlite_backend(path) -> Backend:
    clock = FakeClock()
    db = SqliteDatabase(path)
    return Backend("sqlite", SqliteRunRepository(db, clock=clock), SqliteMarkers(db, clock=clock),
                   SqliteTokenStore(db), clock, settle=lambda: None,
                   sweep=lambda run: db.connection().execute(
                       "DELETE FROM runs WHERE id = ?", (run.id,)))


BACKENDS = ["memory", "dynamo", "sqlite"]


@contextmanager
def dynamo_tables():
    """moto with the template's resources, for fixtures wider than one test."""
    with mock_aws():
        create_resources(boto3.Session(region_name="us-east-1"))
        yield Settings.from_env()


@pytest.fixture(scope="class", params=BACKENDS)
def shared_backend(request, tmp_path_factory):
    """A backend kept for a whole test class (for read-only tests over one seeded store)."""
    if request.param == "memory":
        yield _memory_backend()
        return
    if request.param == "sqlite":
        backend = _sqlite_backend(tmp_path_factory.mktemp("sqlite") / "runs.db")
        yield backend
        backend.repo.db.close()
        return
    with dynamo_tables() as settings:
        yield _dynamo_backend(settings)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    """The memory twin, the DynamoDB adapters on moto (tables from the template), or the
    SQLite adapters on a fresh database file."""
    if request.param == "memory":
        return _memory_backend()
    if request.param == "sqlite":
        return _sqlite_backend(tmp_path / "runs.db")
    request.getfixturevalue("aws")
    request.getfixturevalue("serialised_moto")
    return _dynamo_backend(request.getfixturevalue("settings"))
