"""The `runs` CLI against the API served by Chalice's local HTTP server (as `chalice local` does),
which also shows the bearer authorizer and role checks hold in that runtime."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

import pytest
from chalice.config import Config
from chalice.local import LocalDevServer

from app import app
from chalicelib.cli import ApiClient, ApiError, main
from chalicelib.domain.model import Run
from chalicelib.domain.statuses import RunStatus
from chalicelib.services.tokens import authenticate, create_token

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def box(aws_container):
    return aws_container


@pytest.fixture
def server_url(box):
    server = LocalDevServer(app, Config.create(), "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def run(box) -> Run:
    created = Run(id=str(uuid.uuid4()), automation_name="welcome-email",
                  status=RunStatus.RUNNING, trigger_type="manual", trigger_data={},
                  created_at=T0, started_at=T0,
                  definition={"actions": [{"name": "a", "type": "data", "operator": "set"}]})
    box.repo.create_run(created)
    return created


def token(box, role: str) -> str:
    return create_token(box.tokens, role, T0)[1]


def test_token_create_prints_a_secret_that_authenticates(box, capsys):
    assert main(["token", "create", "--role", "operator", "--description", "ci"]) == 0
    out = capsys.readouterr().out
    secret = next(line for line in out.splitlines() if line.startswith("rt_"))
    assert authenticate(box.tokens, f"Bearer {secret}").role == "operator"


def test_token_create_rejects_an_unknown_role(box, capsys):
    with pytest.raises(SystemExit):
        main(["token", "create", "--role", "root"])


def test_local_server_enforces_tokens_and_roles(box, server_url, run):
    path = f"/api/automations/runs/{run.id}/cancel"
    with pytest.raises(ApiError) as missing:
        ApiClient(server_url, None).request("GET", "/api/automations/runs")
    assert missing.value.status == 401
    with pytest.raises(ApiError) as bad:
        ApiClient(server_url, "rt_not-issued").request("GET", "/api/automations/runs")
    assert bad.value.status == 401 and bad.value.body["code"] == "UNAUTHORIZED"
    with pytest.raises(ApiError) as viewer:
        ApiClient(server_url, token(box, "viewer")).request("POST", path)
    assert viewer.value.status == 403 and viewer.value.body["code"] == "FORBIDDEN"
    answer = ApiClient(server_url, token(box, "operator")).request("POST", path)
    assert answer["status"] == "cancelled"


def test_list_show_and_cancel_print_readable_tables(box, server_url, run, settings, capsys):
    from chalicelib.adapters.counters import StreamPoller

    StreamPoller(settings).drain()
    base = ["--url", server_url, "--token", token(box, "operator")]
    assert main(base + ["list", "--status", "running", "--page-size", "5"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["ID", "AUTOMATION", "STATUS"]
    assert f"{run.id}  welcome-email  running" in out
    assert "page 1/1" in out
    assert main(base + ["show", run.id]) == 0
    out = capsys.readouterr().out
    assert "Steps" in out and "data/set" in out and "pending" in out
    assert main(base + ["cancel", run.id]) == 0
    assert f"cancelled {run.id}" in capsys.readouterr().out


def test_cli_reports_api_errors_with_their_details(box, server_url, run, capsys):
    base = ["--url", server_url, "--token", token(box, "operator")]
    assert main(base + ["list", "--status", "bogus"]) == 1
    err = capsys.readouterr().err
    assert "400 VALIDATION_ERROR" in err and "allowed: pending" in err
    main(base + ["cancel", run.id])
    capsys.readouterr()
    assert main(base + ["cancel", run.id]) == 1
    assert "current status: cancelled" in capsys.readouterr().err


def test_trigger_replay_and_tail_commands(box, server_url, capsys):
    from tests.support.sqs import run_terminal

    common = ["--url", server_url, "--token", token(box, "operator")]
    assert main(common + ["trigger", "always-fails", "--data", '{"n": 1}',
                          "--idempotency-key", "cli-1"]) == 0
    run_id = capsys.readouterr().out.split()[1]
    assert run_terminal(box, run_id).status.value == "failed"
    assert main(common + ["tail", "--polls", "1"]) == 0
    assert f"{run_id}  always-fails" in capsys.readouterr().out
    assert main(common + ["replay", run_id]) == 0
    out = capsys.readouterr().out
    assert f"of {run_id}: resumes at" in out
    assert main(common + ["trigger", "always-fails", "--data", "{bad"]) == 1
    assert "not valid JSON" in capsys.readouterr().err
