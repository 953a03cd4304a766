"""The local stack as a user sees it: `python -m chalicelib.local`, then real HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from .stack_process import REPO, launch

pytestmark = pytest.mark.integration


def test_runs_list_with_admin_token_is_an_empty_first_page(local_stack):
    response = local_stack.get("/api/automations/runs")

    assert response.status == 200, response.body
    assert response.body["runs"] == []
    assert response.body["pagination"]["total"] == 0
    assert response.body["pagination"]["page"] == 1


def test_runs_list_without_a_token_is_unauthorized(local_stack):
    response = local_stack.get("/api/automations/runs", token=None)

    assert response.status == 401


def test_runs_list_with_an_unknown_token_is_unauthorized(local_stack):
    response = local_stack.get("/api/automations/runs", token="not-a-registered-token")

    assert response.status == 401


def test_openapi_document_is_public(local_stack):
    response = local_stack.get("/api/openapi.json", token=None)

    assert response.status == 200
    assert response.body["openapi"].startswith("3.1")
    assert "/api/automations/runs" in response.body["paths"]


def test_start_up_prints_the_token_and_a_curl_line(local_stack):
    assert local_stack.token in local_stack.output
    assert f"curl -H 'Authorization: Bearer {local_stack.token}' {local_stack.url}" in (
        local_stack.output)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_stack_stops_cleanly_on_signal(start_stack, sig):
    stack = start_stack()
    assert stack.get("/api/automations/runs").status == 200

    code = stack.stop(sig)

    assert code == 0, stack.output
    assert "Traceback" not in stack.output
    assert "stopped" in stack.output


def test_port_in_use_is_reported_without_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = launch(port=port)

        code = stack.wait(timeout=60)

    output = stack.output
    assert code != 0
    assert f"port {port}" in output and "RUNS_PORT" in output
    assert "Traceback" not in output


def test_the_stack_says_which_backend_and_where_the_database_is(local_stack):
    assert "backend  sqlite" in local_stack.output
    assert "runs.db" in local_stack.output


def test_token_create_needs_no_aws_variables_next_to_the_local_stack(start_stack, tmp_path):
    db = str(tmp_path / "runs.db")
    stack = start_stack({"RUNS_DB": db})
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("AWS_") and key not in ("RUNS_BACKEND", "RUNS_TABLE")}
    created = subprocess.run(
        [sys.executable, "-c", "import sys; from chalicelib.cli import main; sys.exit(main())",
         "token", "create", "--role", "viewer"],
        env={**env, "RUNS_DB": db}, cwd=REPO, capture_output=True, text=True, timeout=60)

    assert created.returncode == 0, created.stderr
    secret = next(line for line in created.stdout.splitlines() if line.startswith("rt_"))
    assert stack.get("/api/automations/runs", token=secret).status == 200


def test_the_moto_backend_is_kept(start_stack):
    stack = start_stack({"RUNS_BACKEND": "moto"})
    started = stack.post("/api/automations/order-pipeline/trigger", {"triggerData": {
        "orderId": "o-1", "items": [{"price": 7}, {"price": 8}]}})
    assert started.status == 202
    run = stack.wait_for(f"/api/automations/runs/{started.body['id']}",
                         lambda r: r.body.get("status") == "completed").body
    assert run["steps"][-1]["output"]["total"] == 15
    assert "backend  moto" in stack.output
