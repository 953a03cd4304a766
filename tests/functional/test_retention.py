"""Runs past their retention: hidden at once, and out of the list total after the next sweep."""
from __future__ import annotations

import time

import pytest

from chalicelib.adapters.counters import StreamPoller
from chalicelib.domain.clock import utcnow
from chalicelib.services.sweeper import sweep
from chalicelib.services.tokens import create_token
from tests.support.factories import make_run, make_step

RUNS = "/api/automations/runs"


@pytest.fixture
def deps(aws_container):
    return aws_container


@pytest.fixture
def total(client, deps):
    """The list's (ids, total) as the API answers them."""
    _, secret = create_token(deps.tokens, "viewer", utcnow())

    def answer(**params) -> tuple[list[str], int]:
        query = "&".join(f"{key}={value}" for key, value in params.items())
        body = client.http.get(f"{RUNS}?{query}", headers={"Authorization": f"Bearer {secret}"}
                               ).json_body
        return [run["id"] for run in body["runs"]], body["pagination"]["total"]

    return answer


def test_a_sweep_takes_expired_runs_out_of_the_total(deps, settings, total):
    drain = StreamPoller(settings).drain
    live = make_run(automation_name="nightly", expires_at=int(time.time()) + 3600)
    expired = [make_run(automation_name="nightly", expires_at=int(time.time()) - 1)
               for _ in range(3)]
    for run in [live, *expired]:
        deps.repo.create_run(run, [make_step(0)])
    drain()

    result = sweep(deps)
    drain()

    assert result["purged"] == 3
    assert total() == ([live.id], 1)
    assert total(automationName="nightly") == ([live.id], 1)
    assert total(automationName="nightly", status="pending") == ([live.id], 1)
    assert sweep(deps)["purged"] == 0


def test_a_failed_purge_is_logged_and_the_sweep_goes_on(deps, monkeypatch):
    expired = [make_run(expires_at=int(time.time()) - 1) for _ in range(2)]
    for run in expired:
        deps.repo.create_run(run)
    calls, delete = [], deps.repo.delete_run

    def flaky(run_id: str) -> None:
        calls.append(run_id)
        if len(calls) == 1:
            raise RuntimeError("ProvisionedThroughputExceededException")
        delete(run_id)

    monkeypatch.setattr(deps.repo, "delete_run", flaky, raising=False)

    assert sweep(deps)["purged"] == 1
    assert calls == [run.id for run in expired]
    monkeypatch.undo()
    assert sweep(deps)["purged"] == 1  # the next tick retries the one that failed
