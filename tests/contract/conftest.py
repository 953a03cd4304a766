"""Contract fixtures: each test runs against the in-memory twin and DynamoDB on moto."""
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
    return Backend("memory", MemoryRunRepository(clock=clock), MemoryMarkers(clock=clock),
                   MemoryTokenStore(), clock, settle=lambda: None, sweep=lambda run: None)


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


@contextmanager
def dynamo_tables():
    """moto with the template's resources, for fixtures wider than one test."""
    with mock_aws():
        create_resources(boto3.Session(region_name="us-east-1"))
        yield Settings.from_env()


@pytest.fixture(scope="class", params=["memory", "dynamo"])
def shared_backend(request):
    """A backend kept for a whole test class (for read-only tests over one seeded store)."""
    if request.param == "memory":
        yield _memory_backend()
        return
    with dynamo_tables() as settings:
        yield _dynamo_backend(settings)


@pytest.fixture(params=["memory", "dynamo"])
def backend(request) -> Backend:
    """The memory twin, or the DynamoDB adapters on moto (tables from the template)."""
    if request.param == "memory":
        return _memory_backend()
    request.getfixturevalue("aws")
    request.getfixturevalue("serialised_moto")
    return _dynamo_backend(request.getfixturevalue("settings"))
