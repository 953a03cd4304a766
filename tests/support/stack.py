"""Wiring for service tests: containers on in-memory twins, catalogs from YAML text, pumps."""
from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from chalicelib.actions.registry import default_registry
from chalicelib.adapters.memory import (
    MemoryBlobStore,
    MemoryMarkers,
    MemoryQueue,
    MemoryRateLimiter,
    MemoryRunRepository,
    MemorySlots,
    MemoryTokenStore,
)
from chalicelib.bootstrap import Container
from chalicelib.domain.definitions import load_catalog
from chalicelib.services.executor import process_step_message
from chalicelib.settings import Settings


class Clock:
    """A clock the test moves; `tick` is added on every reading so waits pass as calls go by."""

    def __init__(self, tick_ms: int = 0) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=timezone.utc)
        self.tick = timedelta(milliseconds=tick_ms)

    def __call__(self) -> datetime:
        self.now += self.tick
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def catalog_from(tmp_path: Path, yaml_text: str):
    """A Catalog loaded (and validated) from YAML text, as start-up would."""
    folder = tmp_path / "automations"
    folder.mkdir(exist_ok=True)
    (folder / "test.yaml").write_text(textwrap.dedent(yaml_text))
    return load_catalog(folder, default_registry())


def memory_container(catalog, **overrides: Any) -> Container:
    """A Container whose every port is an in-memory twin."""
    ports: dict[str, Any] = {
        "repo": MemoryRunRepository(), "markers": MemoryMarkers(), "slots": MemorySlots(),
        "tokens": MemoryTokenStore(), "rate_limiter": MemoryRateLimiter(),
        "step_queue": MemoryQueue(),
        "exhausted_queue": MemoryQueue(), "blobs": MemoryBlobStore(),
        "catalog": catalog, "actions": default_registry(),
    }
    ports.update(overrides)
    settings = ports.pop("settings", Settings(allow_private_http=True))
    return Container(settings=settings, overrides=ports)


def pump(deps, *, limit: int = 200, remaining_ms: int = 900_000) -> list[dict[str, Any]]:
    """Deliver every queued step message (delays ignored) until the queue is empty."""
    delivered = []
    for _ in range(limit):
        batch = deps.step_queue.drain()
        if not batch:
            return delivered
        for body, _delay in batch:
            delivered.append(body)
            process_step_message(deps, body, lambda: remaining_ms)
    raise AssertionError("step queue never drained")
