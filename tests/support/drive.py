"""Runs driven through the API (trigger, cancel, detail, list) and step workers on threads,
for the concurrency, cancel and race tests."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from chalicelib.domain.statuses import TERMINAL
from tests.support.apps import bearer, post
from tests.support.sqs import deliver

RUNS = "/api/automations/runs"


class Api:
    """The runs API through chalice.test.Client, with one operator token."""

    def __init__(self, client, deps) -> None:
        self.client = client
        self.deps = deps
        self.headers = bearer(deps, "operator")

    def trigger(self, name: str, data: Any = None) -> str:
        """POST .../trigger; returns the new run's id."""
        response = post(self.client, f"/api/automations/{name}/trigger", self.headers,
                        {"triggerData": data or {}})
        assert response.status_code == 202, response.body
        return response.json_body["id"]

    def cancel(self, run_id: str):
        """POST .../cancel; the raw response (200 or 409)."""
        return post(self.client, f"{RUNS}/{run_id}/cancel", self.headers)

    def detail(self, run_id: str) -> dict[str, Any]:
        response = self.client.http.get(f"{RUNS}/{run_id}", headers=self.headers)
        assert response.status_code == 200, response.body
        return response.json_body

    def listed(self, **params: Any) -> list[dict[str, Any]]:
        """The first page (100) of GET /runs with these query parameters."""
        query = urlencode({"pageSize": 100, **params}, doseq=True)
        response = self.client.http.get(f"{RUNS}?{query}", headers=self.headers)
        assert response.status_code == 200, response.body
        return response.json_body["runs"]

    def status(self, run_id: str) -> str:
        return self.deps.repo.get_run(run_id).status.value


def all_terminal(deps, run_ids: list[str]) -> Callable[[], bool]:
    """A `done` condition: every run has reached a terminal status."""
    return lambda: all(deps.repo.get_run(run_id).status in TERMINAL for run_id in run_ids)


def deliver_one(deps) -> None:
    """Deliver the next step message, which must be there."""
    messages = deps.step_queue.receive(max_messages=1, wait_seconds=0)
    assert messages, "a run is waiting but no step message is queued"
    assert not deliver(deps, messages), "the step handler reported failures"


def drain_queue(deps) -> list[dict[str, Any]]:
    """Deliver every message now on the step queue (and those it adds); returns the bodies."""
    bodies = []
    while messages := deps.step_queue.receive(max_messages=10, wait_seconds=0):
        bodies += [json.loads(m["Body"]) for m in messages]
        assert not deliver(deps, messages), "the step handler reported failures"
    return bodies


def deliver_concurrently(deps, done: Callable[[], bool], *, workers: int = 3,
                         observe: Callable[[], None] = lambda: None,
                         timeout_s: float = 120) -> None:
    """Several worker threads receive and deliver one step message at a time, calling
    `observe()` after each delivery; the caller observes between polls too, until `done()`."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while not stop.is_set():
                messages = deps.step_queue.receive(max_messages=1, wait_seconds=0)
                if not messages:
                    time.sleep(0.01)
                    continue
                assert not deliver(deps, messages), "the step handler reported failures"
                observe()
        except BaseException as exc:  # noqa: BLE001 - surfaced in the test thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not stop.is_set() and not done():
            assert time.monotonic() < deadline, "runs did not finish before the timeout"
            observe()
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
