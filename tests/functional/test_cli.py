"""The `runs` CLI against the API served by Chalice's local HTTP server (as `chalice local` does),
which also shows the bearer authorizer and role checks hold in that runtime. Every command is
run as a user would (argv), in people's form and with `--json`; errors are one line on stderr
with an exit status scripts can use."""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone

import pytest
from chalice.config import Config

from app import app
from chalicelib.cli import ApiClient, ApiError, Exit, main
from chalicelib.domain.model import Run
from chalicelib.domain.statuses import RunStatus
from chalicelib.local.gateway import local_server
from chalicelib.services.tokens import authenticate, create_token
from tests.support.factories import definition

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def box(aws_container, monkeypatch):
    monkeypatch.setenv("RUNS_BACKEND", "aws")  # `runs token create` writes to DynamoDB
    return aws_container


@pytest.fixture
def server_url(box):
    server = local_server(app, Config.create(), "127.0.0.1", 0)
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
                  definition=definition("welcome-email",
                                        {"name": "a", "type": "data", "operator": "set"}))
    box.repo.create_run(created)
    return created


def token(box, role: str) -> str:
    return create_token(box.tokens, role, T0)[1]


@pytest.fixture
def cli(box, server_url, capsys):
    """`cli(*argv)` → (exit status, stdout, stderr) with --url and an operator token."""
    base = ["--url", server_url, "--token", token(box, "operator")]

    def call(*argv: str, auth: bool = True) -> tuple[int, str, str]:
        code = main((base if auth else ["--url", server_url]) + list(argv))
        captured = capsys.readouterr()
        return code, _without_server_logs(captured.out), captured.err

    return call


@pytest.fixture
def worker(box, monkeypatch):
    """The CLI's polling sleeps deliver the queued step messages instead (no worker threads)."""
    from chalicelib.cli import commands
    from tests.support.sqs import deliver

    def sleep(_seconds: float) -> None:
        messages = box.step_queue.receive(max_messages=10, wait_seconds=0)
        if messages:
            deliver(box, messages)

    monkeypatch.setattr(commands.time, "sleep", sleep)


def _without_server_logs(out: str) -> str:
    """The API runs in this process here: drop its JSON log and metric lines from stdout."""
    return "".join(line for line in out.splitlines(keepends=True)
                   if not line.startswith(('{"_aws"', '{"level"')))


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_token_create_prints_a_secret_that_authenticates(box, capsys):
    assert main(["token", "create", "--role", "operator", "--description", "ci"]) == 0
    out = capsys.readouterr().out
    secret = next(line for line in out.splitlines() if line.startswith("rt_"))
    assert authenticate(box.tokens, f"Bearer {secret}").role == "operator"
    assert main(["token", "create", "--role", "viewer", "--json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert authenticate(box.tokens, f"Bearer {issued['secret']}").role == "viewer"


def test_token_create_rejects_an_unknown_role(box, capsys):
    assert main(["token", "create", "--role", "root"]) == Exit.ERROR
    assert "role" in one_line(capsys.readouterr().err)


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


def test_list_show_and_cancel_print_readable_tables(cli, run, settings):
    from chalicelib.adapters.counters import StreamPoller

    StreamPoller(settings).drain()
    code, out, _ = cli("list", "--status", "running", "--page-size", "5")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["ID", "AUTOMATION", "STATUS"]
    assert out.splitlines()[1].split()[:3] == [run.id, "welcome-email", "running"]
    assert "page 1/1 · 1 runs" in out
    code, out, _ = cli("show", run.id)
    assert code == 0 and "Steps" in out and "data/set" in out and "pending" in out
    code, out, _ = cli("cancel", run.id)
    assert code == 0 and f"cancelled {run.id}" in out


def test_every_command_answers_json_that_parses(cli, run, settings):
    from chalicelib.adapters.counters import StreamPoller

    StreamPoller(settings).drain()
    listing = json.loads(cli("list", "--json")[1])
    assert [r["id"] for r in listing["runs"]] == [run.id]
    assert listing["pagination"]["total"] == 1
    assert json.loads(cli("show", run.id, "--json")[1])["steps"][0]["name"] == "a"
    names = {a["name"] for a in json.loads(cli("automations", "--json")[1])["automations"]}
    assert {"always-fails", "hello-manual"} <= names
    assert json.loads(cli("cancel", run.id, "--json")[1])["status"] == "cancelled"
    started = json.loads(cli("trigger", "hello-manual", "--data", '{"name": "Ada"}',
                             "--json")[1])
    assert started["status"] == "pending"
    events = [json.loads(line) for line in cli("tail", "--polls", "1", "--json")[1].splitlines()]
    assert {e["id"] for e in events} >= {started["id"]}


def test_show_lists_attempts_and_errors_and_verbose_adds_outputs_and_stacks(cli, box, worker):
    from tests.support.sqs import run_terminal

    code, out, _ = cli("trigger", "always-fails", "--data", '{"orderId": "o-17"}')
    run_id = out.split()[1]
    assert run_terminal(box, run_id).status.value == "failed"
    code, out, _ = cli("show", run_id)
    assert code == 0
    assert "Attempts of boom" in out and "DemoFailure: failed on purpose" in out
    assert "o-17" not in out and "Traceback" not in out
    code, out, _ = cli("show", run_id, "--verbose")
    assert "Trigger data" in out and '"orderId": "o-17"' in out
    assert "stack of attempt 1" in out and "Traceback" in out


def test_trigger_then_replay_from_a_step_waits_for_the_new_run(cli, box, worker):
    from tests.support.sqs import run_terminal

    code, out, _ = cli("trigger", "order-pipeline", "--idempotency-key", "cli-1", "--data",
                       json.dumps({"orderId": "o-1", "items": [{"price": 12}]}))
    run_id = out.split()[1]
    assert run_terminal(box, run_id).status.value == "completed"
    code, out, _ = cli("replay", run_id, "--from-step", "total", "--wait", "--interval", "0")
    assert code == Exit.OK, out
    assert f"of {run_id}: resumes at total, reuses order" in out
    assert "step 1 total" in out and "run" in out.splitlines()[-1]
    assert out.splitlines()[-1].split()[-1] == "completed"
    code, out, _ = cli("replay", run_id, "--from-step", "receipt", "--wait", "--json",
                       "--interval", "0")
    final = json.loads(out)
    assert code == 0 and final["replayOf"] == run_id and final["status"] == "completed"


def test_replay_wait_exits_non_zero_when_the_new_run_fails(cli, box, worker):
    from tests.support.sqs import run_terminal

    run_id = cli("trigger", "always-fails")[1].split()[1]
    run_terminal(box, run_id)
    code, out, _ = cli("replay", run_id, "--wait", "--interval", "0")
    assert code == Exit.RUN_NOT_COMPLETED
    assert "failed on purpose" in out


def test_tail_follows_new_runs_or_one_runs_steps(cli, box, worker):
    run_id = cli("trigger", "order-pipeline", "--data",
                 json.dumps({"orderId": "o-2", "items": [{"price": 3}]}))[1].split()[1]
    code, out, _ = cli("tail", "--polls", "1")
    assert code == 0 and f"{run_id} order-pipeline" in " ".join(out.split())
    code, out, _ = cli("tail", run_id, "--interval", "0")
    assert code == Exit.OK
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "step 0 order completed" in lines and "step 2 bigEnough completed" in lines
    assert "step 3 receipt skipped" in lines and lines[-1] == "run completed"


def test_errors_are_one_line_with_an_exit_status(cli, run, server_url, box, capsys):
    code, _, err = cli("list", "--status", "bogus")
    assert code == Exit.ERROR
    assert "400 VALIDATION_ERROR" in one_line(err) and "allowed: pending" in err
    cli("cancel", run.id)
    code, _, err = cli("cancel", run.id)
    assert code == Exit.CONFLICT and "current status: cancelled" in one_line(err)
    code, _, err = cli("show", "no-such-run")
    assert code == Exit.NOT_FOUND and "404 NOT_FOUND" in one_line(err)
    code, _, err = cli("trigger", "always-fails", "--data", "{bad")
    assert code == Exit.ERROR and "--data is not valid JSON" in one_line(err)
    code, _, err = cli("list", auth=False)
    assert code == Exit.AUTH and "set RUNS_TOKEN" in one_line(err)
    assert main(["--url", server_url, "--token", token(box, "viewer"), "cancel", run.id]) \
        == Exit.AUTH
    assert "operator or admin token" in one_line(capsys.readouterr().err)


def test_an_unreachable_api_names_runs_url(box, capsys, monkeypatch):
    from tests.integration.stack_process import free_port

    monkeypatch.setenv("RUNS_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["list"]) == Exit.UNREACHABLE
    line = one_line(capsys.readouterr().err)
    assert "cannot reach http://127.0.0.1:" in line and "set RUNS_URL" in line


def test_usage_errors_exit_2_and_completion_scripts_are_offered(capsys, monkeypatch):
    # Without this, Typer detects the shell from the parent processes and takes "bash" for
    # an argument: the test then depends on what started pytest (it failed under a
    # detached `make test`, "Shell  not supported").
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    assert main(["frobnicate"]) == Exit.USAGE
    assert "No such command" in capsys.readouterr().err
    assert main(["--show-completion", "bash"]) == 0
    assert "_RUNS_COMPLETE" in capsys.readouterr().out
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    for command in ("list", "show", "trigger", "replay", "cancel", "tail", "automations",
                    "token", "dev", "--install-completion"):
        assert command in help_text


def test_dev_starts_the_local_stack(monkeypatch):
    import chalicelib.local.__main__ as local_main

    started = []
    monkeypatch.setattr(local_main, "main", lambda: started.append(True) or 0)
    assert main(["dev"]) == 0 and started == [True]


def test_token_create_with_expiry_then_list_and_revoke_over_the_api(box, server_url, capsys):
    code = main(["token", "create", "--role", "viewer", "--description", "dash",
                 "--expires-in-days", "7"])
    out = capsys.readouterr().out
    assert code == 0 and "7 days" in out
    secret = next(line for line in out.splitlines() if line.startswith("rt_"))
    viewer = authenticate(box.tokens, f"Bearer {secret}")
    assert viewer.expires_at is not None
    admin = ["--url", server_url, "--token",
             create_token(box.tokens, "admin", datetime.now(timezone.utc))[1]]
    assert main(admin + ["token", "list"]) == 0
    out = _without_server_logs(capsys.readouterr().out)
    assert out.splitlines()[0].split()[:3] == ["ID", "NAME", "ROLE"]
    assert viewer.token_id in out and "dash" in out and secret not in out
    listed = json.loads(_without_server_logs((main(admin + ["token", "list", "--json"]),
                                              capsys.readouterr().out)[1]))
    assert viewer.token_id in {t["id"] for t in listed["tokens"]}
    assert main(admin + ["token", "revoke", viewer.token_id]) == 0
    assert f"revoked {viewer.token_id}" in capsys.readouterr().out
    with pytest.raises(ApiError) as refused:
        ApiClient(server_url, secret).request("GET", "/api/automations/runs")
    assert refused.value.status == 401
    viewer_only = ["--url", server_url, "--token", token(box, "viewer")]
    assert main(viewer_only + ["token", "list"]) == Exit.AUTH


def test_bulk_cancel_dry_run_then_batch_followed_to_the_end(cli, box, run, worker):
    other = run.evolve(id=str(uuid.uuid4()), status=RunStatus.COMPLETED, completed_at=T0)
    box.repo.create_run(other)
    match = ["--filter", "automation=welcome-email", "--filter", "since=2026-01-01T00:00:00Z"]

    code, out, _ = cli("cancel", *match, "--dry-run")
    assert code == 0 and "would cancel up to 2 runs (2 match)" in out
    assert run.id in out and other.id in out
    assert box.repo.get_run(run.id).status == RunStatus.RUNNING

    code, out, _ = cli("cancel", *match, "--wait")
    assert code == 0, out
    batch_id = out.split()[1].rstrip(":")
    assert "cancelled 1 · skipped 1 · failed 0 · done" in out
    assert box.repo.get_run(run.id).status == RunStatus.CANCELLED
    code, out, _ = cli("batch", batch_id)
    assert code == 0 and "cancelled runs (1):" in out and run.id in out
    code, out, _ = cli("batch", batch_id, "--json")
    assert json.loads(out)["cancelledRunIds"] == [run.id]


def test_bulk_commands_refuse_a_bad_filter_and_a_run_id_with_it(cli, run):
    code, _, err = cli("replay", "--filter", "colour=blue", "--dry-run")
    assert code == Exit.ERROR and "KEY=VALUE" in one_line(err)
    code, _, err = cli("cancel", run.id, "--filter", "status=running")
    assert code == Exit.ERROR and "not both" in one_line(err)
    code, _, err = cli("replay", "--filter", "status=lost", "--dry-run")
    assert code != 0 and "status" in one_line(err)


def test_list_waiting_and_by_data_then_retry_now(cli, box):
    """`runs list --waiting retry`, `--data key=value` and `runs retry-now ID STEP`."""
    from datetime import timedelta

    from chalicelib.domain.model import Step, Waiting
    from chalicelib.domain.statuses import StepStatus

    until = datetime.now(timezone.utc) + timedelta(minutes=10)
    parked = Run(id=str(uuid.uuid4()), automation_name="shop", status=RunStatus.RUNNING,
                 trigger_type="manual", trigger_data={"orderId": "o-42"}, created_at=T0,
                 started_at=T0, waiting=Waiting("retry", "pay", 0, 2, until),
                 definition={"index": ["orderId"],
                             "actions": [{"name": "pay", "type": "http", "operator": "post"}]})
    box.repo.create_run(parked, [Step(index=0, name="pay", type="http", operator="post",
                                      status=StepStatus.RUNNING, attempt=1, claim_token="c1",
                                      next_attempt_at=until, error={"message": "503"})])
    code, out, _ = cli("list", "--waiting", "retry")
    assert code == 0 and parked.id in out and "retry 2 of pay until" in out
    code, out, _ = cli("list", "--data", "orderId=o-42", "--json")
    assert [r["id"] for r in json.loads(out)["runs"]] == [parked.id]
    code, out, _ = cli("list", "--data", "orderId=nothing", "--json")
    assert json.loads(out)["runs"] == []
    code, _, err = cli("list", "--data", "orderId")
    assert code != 0 and "KEY=VALUE" in err

    code, out, _ = cli("retry-now", parked.id, "pay")
    assert code == 0 and f"woke pay of {parked.id}: attempt 2 runs now" in out
    code, out, _ = cli("retry-now", parked.id, "pay", "--json")
    assert json.loads(out)["repeated"] is True
    code, _, err = cli("retry-now", parked.id, "nope")
    assert code != 0 and "no step named nope" in one_line(err)
