"""Helpers for functional tests of runs: trigger through the API, read detail and lists,
find failure-handler runs, parse attempt timestamps and the EMF lines printed to stdout."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.domain.clock import parse_iso
from chalicelib.domain.model import RunFilter
from tests.support.apps import bearer, post


def trigger(client, deps, name: str, data: Any = None) -> str:
    """POST a manual trigger; returns the new run's id."""
    response = post(client, f"/api/automations/{name}/trigger", bearer(deps, "operator"),
                    {"triggerData": data or {}})
    assert response.status_code == 202, response.body
    return response.json_body["id"]


def detail(client, deps, run_id: str) -> dict[str, Any]:
    """GET the run detail (steps include synthesized `skipped`/`pending` ones)."""
    response = client.http.get(f"/api/automations/runs/{run_id}", headers=bearer(deps, "viewer"))
    assert response.status_code == 200, response.body
    return response.json_body


def listed(client, deps, automation: str) -> list[dict[str, Any]]:
    """GET the run list of one automation, newest first."""
    response = client.http.get(f"/api/automations/runs?automationName={automation}",
                               headers=bearer(deps, "viewer"))
    assert response.status_code == 200, response.body
    return response.json_body["runs"]


def runs_of(deps, automation: str):
    """Every stored run of `automation` (newest first)."""
    return deps.repo.list_runs(RunFilter(automation_name=automation), limit=100).runs


def attempt_times(step: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    """(startedAt, completedAt) of each recorded attempt of a step, in attempt order."""
    return [(parse_iso(a["startedAt"]), parse_iso(a["completedAt"])) for a in step["attempts"]]


def gaps_ms(step: dict[str, Any]) -> list[float]:
    """Milliseconds between the end of each attempt and the start of the next."""
    times = attempt_times(step)
    return [(times[i + 1][0] - times[i][1]).total_seconds() * 1000
            for i in range(len(times) - 1)]


def emf_metrics(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(metric name, dimensions) of every Powertools EMF line in captured stdout."""
    found = []
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                dims = {key: blob.get(key) for group in directive["Dimensions"] for key in group}
                found.append((metric["Name"], dims))
    return found


def drain(deps, *, times: int = 1) -> int:
    """Deliver visible step messages until none is left (delayed ones are not waited for)."""
    from tests.support.sqs import deliver  # noqa: PLC0415

    delivered = 0
    while messages := deps.step_queue.receive(max_messages=10, wait_seconds=0):
        deliver(deps, messages, times=times)
        delivered += len(messages)
    return delivered


def metric_names(stdout: str, automation: str) -> set[str]:
    """Names of the EMF metrics printed with `automation` as their dimension."""
    return {name for name, dims in emf_metrics(stdout) if dims.get("automation") == automation}
