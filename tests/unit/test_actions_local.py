"""filter, data, delay, automation/call and flow/fail actions, and the registry itself."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.actions.base import Halt, Wait
from chalicelib.actions.registry import ActionSpec, Registry, UnknownAction, default_registry
from chalicelib.actions.data import SetProps
from chalicelib.domain.errors import AutomationNotFound
from chalicelib.domain.retry import ActionError
from chalicelib.domain.templates import build_context, data_view, render
from tests.support.fixtures import action_context

REGISTRY = default_registry()
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def run(kind: str, props: dict, **ctx_fields):
    action_type, operator = kind.split("/")
    return REGISTRY.execute(action_type, operator, action_context(props=props, **ctx_fields))


def data(**steps):
    ctx = build_context(trigger_data={"amount": 120, "tags": []}, steps=steps, run_id="run-1",
                        attempt=1, automation_name="a")
    return data_view(ctx)


def test_filter_passes_when_the_condition_holds_over_the_template_context():
    output = run("filter/continue", {"condition": "trigger.data.amount > `100`"}, data=data())
    assert output == {"passed": True}


@pytest.mark.parametrize("condition", ["trigger.data.amount < `100`", "trigger.data.tags",
                                       "steps.check.ok", "run.missing"])
def test_filter_halts_on_false_or_empty_values(condition):
    output = run("filter/continue", {"condition": condition}, data=data(check={"ok": False}))
    assert output == Halt({"passed": False})


def test_filter_reads_step_outputs_and_run_fields():
    ctx_data = data(score={"value": 3})
    assert run("filter/continue", {"condition": "steps.score.value == `3` && run.id == 'run-1'"},
               data=ctx_data) == {"passed": True}


def test_data_set_returns_the_rendered_value():
    ctx = build_context(trigger_data={"n": 5}, steps={}, run_id="r", attempt=1,
                        automation_name="a")
    props = render({"value": {"n": "{{trigger.data.n}}", "label": "n={{trigger.data.n}}"}}, ctx)
    assert run("data/set", props) == {"n": 5, "label": "n=5"}


def test_data_set_requires_a_value():
    with pytest.raises(ActionError, match="value"):
        run("data/set", {})


def test_data_query_evaluates_jmespath_over_the_input():
    items = [{"price": 4, "sku": "a"}, {"price": 8, "sku": "b"}]
    assert run("data/query", {"input": items, "expression": "sum([].price)"}) == 12
    assert run("data/query", {"input": items, "expression": "[?price > `5`].sku"}) == ["b"]


def test_data_query_runtime_errors_are_not_retryable():
    with pytest.raises(ActionError) as raised:
        run("data/query", {"input": "text", "expression": "sum(@)"})
    assert (raised.value.error_type, raised.value.retryable) == ("ExpressionError", False)


def test_delay_first_asks_to_wait_until_now_plus_ms():
    assert run("delay/wait", {"ms": 90_000}, now=lambda: T0) == Wait(
        until=T0 + timedelta(seconds=90))


def test_delay_resumed_after_the_wait_reports_the_waited_time():
    later = T0 + timedelta(seconds=91)
    output = run("delay/wait", {"ms": 90_000}, now=lambda: later, wait_started_at=T0)
    assert output == {"waitedMs": 91_000}


def test_delay_resumed_early_keeps_waiting_for_the_same_deadline():
    early = T0 + timedelta(minutes=15)
    output = run("delay/wait", {"ms": 3_600_000}, now=lambda: early, wait_started_at=T0)
    assert output == Wait(until=T0 + timedelta(hours=1))


def test_delay_longer_than_seven_days_is_rejected():
    with pytest.raises(ActionError, match="ms"):
        run("delay/wait", {"ms": 7 * 24 * 3600 * 1000 + 1})


def test_automation_call_starts_a_run_through_the_executor():
    started = []

    def start_run(name, trigger_data):
        started.append((name, trigger_data))
        return "child-run"

    output = run("automation/call", {"automation": "child", "triggerData": {"x": 1}},
                 start_run=start_run, depth=3)
    assert output == {"runId": "child-run"}
    assert started == [("child", {"x": 1})]


def test_automation_call_beyond_depth_ten_is_not_retryable():
    def start_run(name, trigger_data):
        raise AssertionError("must not start")

    assert run("automation/call", {"automation": "child"}, start_run=lambda n, d: "ok",
               depth=9) == {"runId": "ok"}
    with pytest.raises(ActionError) as raised:
        run("automation/call", {"automation": "child"}, start_run=start_run, depth=10)
    assert (raised.value.error_type, raised.value.retryable) == ("CallDepthExceeded", False)


def test_automation_call_of_an_unknown_automation_is_not_retryable():
    def start_run(name, trigger_data):
        raise AutomationNotFound(name)

    with pytest.raises(ActionError) as raised:
        run("automation/call", {"automation": "ghost"}, start_run=start_run)
    assert (raised.value.error_type, raised.value.retryable) == ("AutomationNotFound", False)


def test_flow_fail_raises_a_non_retryable_error_with_the_message_and_type():
    with pytest.raises(ActionError) as raised:
        run("flow/fail", {"message": "order rejected", "errorType": "Rejected"})
    error = raised.value
    assert (error.message, error.error_type, error.retryable) == ("order rejected", "Rejected",
                                                                  False)
    with pytest.raises(ActionError) as default:
        run("flow/fail", {"message": "no"})
    assert default.value.error_type == "FlowFail"


def test_registry_lists_every_spec_action_and_rejects_unknown_ones():
    assert REGISTRY.known() == sorted([
        "http/get", "http/post", "http/put", "http/patch", "http/delete", "filter/continue",
        "data/set", "data/query", "delay/wait", "aws/sqs-send", "aws/sns-publish",
        "aws/eventbridge-put", "aws/dynamodb-put", "email/send", "automation/call", "flow/fail"])
    with pytest.raises(UnknownAction):
        REGISTRY.get("ftp", "get")
    spec = REGISTRY.get("data", "set")
    assert spec.props_model is SetProps and spec.kind == "data/set"


def test_registry_validates_props_and_skips_template_placeholders():
    assert REGISTRY.validate_props("delay", "wait", {"ms": "{{trigger.data.ms}}"}) == []
    [problem] = REGISTRY.validate_props("delay", "wait", {"ms": "soon"})
    assert problem.path == "ms"
    [missing] = REGISTRY.validate_props("http", "get", {"url": "{{secrets.BASE}}/x", "bogus": 1})
    assert (missing.path, missing.message) == ("bogus", "Extra inputs are not permitted")


def test_registry_can_be_extended():
    registry = Registry([ActionSpec("test", "echo", SetProps, lambda props, ctx: props.value)])
    assert registry.execute("test", "echo", action_context(props={"value": 3})) == 3


def test_idempotency_key_is_run_and_step():
    assert action_context(run_id="r-9", step_name="send").idempotency_key == "r-9:send"


def test_remaining_time_is_capped_by_the_run_deadline():
    ctx = action_context(timeout_s=30, deadline=T0 + timedelta(seconds=4), now=lambda: T0)
    assert ctx.remaining_s() == 4
    late = action_context(deadline=T0, now=lambda: T0 + timedelta(seconds=1))
    with pytest.raises(ActionError) as raised:
        late.remaining_s()
    assert raised.value.timed_out is True


def test_only_actions_with_nothing_to_wait_for_run_inline():
    """data/set and flow/fail run on the executor's thread; everything that may wait (I/O,
    JMESPath over any input, another run) is timed on a worker thread, http by its sockets."""
    inline = sorted(kind for kind in REGISTRY.known()
                    if REGISTRY.get(*kind.split("/")).inline)
    assert inline == ["data/set", "flow/fail"]


def test_an_inline_action_runs_on_the_calling_thread_and_the_others_on_a_worker():
    import threading  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    from chalicelib.domain.definitions import Action  # noqa: PLC0415
    from chalicelib.services.attempt import _execute  # noqa: PLC0415

    def where(props, ctx):
        return threading.current_thread().name

    registry = Registry([ActionSpec("t", "inline", SetProps, where, inline=True),
                         ActionSpec("t", "timed", SetProps, where)])
    deps = SimpleNamespace(actions=registry)
    ctx = action_context(props={"value": 1})
    here = threading.current_thread().name

    inline = Action(name="a", type="t", operator="inline")
    timed = Action(name="b", type="t", operator="timed")
    assert _execute(deps, inline, ctx) == here
    assert _execute(deps, timed, ctx).startswith("action")
