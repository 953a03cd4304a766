"""The local stack as a user sees it: `python -m chalicelib.local`, then real HTTP."""
from __future__ import annotations

import signal
import socket

import pytest

from .stack_process import launch

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
