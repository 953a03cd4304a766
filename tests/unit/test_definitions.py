"""Automation definitions (SPEC 2): loading, validation messages, catalog and snapshots."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from chalicelib.actions.registry import default_registry
from chalicelib.domain.definitions import Automation, CronTrigger, load_catalog
from chalicelib.domain.errors import AutomationNotFound, DefinitionError
from chalicelib.domain.rate_limit import Allowance
from chalicelib.domain.statuses import RunStatus
from chalicelib.settings import EXAMPLE_AUTOMATIONS, USER_AUTOMATIONS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "definitions"
REGISTRY = default_registry()

MINIMAL = """
automations:
  - name: {name}
    trigger: {trigger}
    actions:
      - {{ name: a, type: data, operator: set, props: {{ value: 1 }} }}
"""


def problems_of(tmp_path: Path, text: str, filename: str = "bad.yaml") -> list[str]:
    (tmp_path / filename).write_text(text)
    with pytest.raises(DefinitionError) as raised:
        load_catalog(tmp_path, REGISTRY)
    return raised.value.problems


def test_examples_load_and_cover_every_trigger_type():
    catalog = load_catalog(EXAMPLE_AUTOMATIONS, REGISTRY)
    assert {a.trigger_type for a in catalog.all()} == {
        "manual", "webhook", "cron", "automation-failure"}
    assert [a.name for a in catalog.cron_automations()] == ["heartbeat"]
    assert [a.name for a in catalog.failure_handlers()] == ["failure-notifier"]


def test_your_automations_live_in_a_real_top_level_folder_apart_from_the_examples():
    folder = Path(USER_AUTOMATIONS)
    assert folder.is_dir() and not folder.is_symlink()
    assert folder.parent == Path(EXAMPLE_AUTOMATIONS).parent


def test_good_definitions_load_with_defaults_applied():
    catalog = load_catalog(FIXTURES / "good", REGISTRY)
    hook = catalog.get("signup-webhook")
    assert hook.trigger.deduplication_window == 600
    assert hook.retry.strategy == "exponential" and hook.retry.jitter == "full"
    assert hook.actions[0].retry.max_attempts == 5 and hook.actions[0].retry.delay_ms == 1000
    assert hook.actions[1].continue_on_error is True
    nightly = catalog.get("nightly-report")
    assert nightly.enabled is False and nightly.timeout == 900_000
    assert nightly.trigger.timezone == "Europe/Paris"
    assert catalog.get("on-failure").trigger.statuses == [RunStatus.FAILED, RunStatus.EXHAUSTED]


def test_a_single_file_can_be_loaded():
    catalog = load_catalog(FIXTURES / "good" / "every_feature.yaml", REGISTRY)
    assert len(catalog.all()) == 3


def test_all_problems_are_reported_at_once_naming_file_automation_and_field():
    with pytest.raises(DefinitionError) as raised:
        load_catalog(FIXTURES / "bad", REGISTRY)
    problems = raised.value.problems
    expected = [
        "broken.yaml: automation 'bad-props': actions[0].props.url: Field required",
        "broken.yaml: automation 'bad-props': actions[1].props.expectedStatus: Input should be",
        "broken.yaml: automation 'Bad_Name': name: String should match pattern",
        "broken.yaml: automation 'unknown-action': actions[0].type: unknown action 'ftp/get'",
        "broken.yaml: automation 'bad-cron': trigger.expression: '61 * * * *' is not a valid",
        "broken.yaml: automation 'bad-zone': trigger.timezone: 'Mars/Olympus' is not an IANA",
        "more.yaml: automation 'shared-name': name: already defined in broken.yaml",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert "broken.yaml: automation 'bad-props'" in str(raised.value)


@pytest.mark.parametrize("trigger, field", [
    ("{ type: cron, expression: '* * * *' }", "trigger.expression"),
    ("{ type: cron, expression: '0 0 * * * *' }", "trigger.expression"),
    ("{ type: cron, expression: '* * * * *', timezone: Nowhere/City }", "trigger.timezone"),
    ("{ type: webhook, secret: plain-text-key }", "trigger.secret"),
    ("{ type: webhook, deduplicationWindow: 0 }", "trigger.deduplicationWindow"),
    ("{ type: webhook, rateLimit: { perMinute: 0 } }", "trigger.rateLimit.perMinute"),
    ("{ type: webhook, rateLimit: { perMinute: 60, burst: 1001 } }", "trigger.rateLimit.burst"),
    ("{ type: webhook, rateLimit: { perSecond: 5 } }", "trigger.rateLimit.perSecond"),
    ("{ type: webhook, rateLimit: many }", "trigger.rateLimit"),
    ("{ type: automation-failure, statuses: [completed] }", "trigger.statuses"),
    ("{ type: carrier-pigeon }", "trigger"),
    ("{ type: manual, extra: 1 }", "trigger.extra"),
])
def test_bad_triggers_name_the_field(tmp_path, trigger, field):
    problems = problems_of(tmp_path, MINIMAL.format(name="x", trigger=trigger))
    assert any(p.startswith(f"bad.yaml: automation 'x': {field}: ") for p in problems), problems


@pytest.mark.parametrize("body, field", [
    ("timeout: 999", "timeout"),
    ("timeout: 900001", "timeout"),
    ("retry: { delayMs: 100 }", "retry.maxAttempts"),
    ("retry: { maxAttempts: 11 }", "retry.maxAttempts"),
    ("retry: { maxAttempts: 2, delayMs: 99 }", "retry.delayMs"),
    ("retry: { maxAttempts: 2, strategy: linear }", "retry.strategy"),
    ("retry: { maxAttempts: 2, jitter: half }", "retry.jitter"),
    ("concurrency: { limit: 0 }", "concurrency.limit"),
    ("colour: blue", "colour"),
])
def test_bad_automation_fields_name_the_field(tmp_path, body, field):
    text = MINIMAL.format(name="x", trigger="{ type: manual }") + f"    {body}\n"
    problems = problems_of(tmp_path, text)
    assert any(p.startswith(f"bad.yaml: automation 'x': {field}: ") for p in problems), problems


@pytest.mark.parametrize("action, field", [
    ("{ name: 1st, type: data, operator: set, props: { value: 1 } }", "actions[1].name"),
    ("{ name: a, type: data, operator: set, props: { value: 1 } }", "actions"),
    ("{ name: b, type: data, operator: nope }", "actions[1].type"),
    ("{ name: b, type: data, operator: set, timeout: 500, props: { value: 1 } }",
     "actions[1].timeout"),
    ("{ name: b, type: delay, operator: wait, props: { ms: 604800001 } }", "actions[1].props.ms"),
    ("{ name: b, type: filter, operator: continue, props: { condition: 'a.[' } }",
     "actions[1].props.condition"),
    ("{ name: b, type: http, operator: get, props: { url: 'ftp://x' } }", "actions[1].props.url"),
    ("{ name: b, type: aws, operator: sqs-send, props: { messageBody: x } }", "actions[1].props"),
    ("{ name: b, type: automation, operator: call, props: { automation: ghost } }",
     "actions[1].props.automation"),
])
def test_bad_actions_name_the_field(tmp_path, action, field):
    text = MINIMAL.format(name="x", trigger="{ type: manual }") + f"      - {action}\n"
    problems = problems_of(tmp_path, text)
    assert any(p.startswith(f"bad.yaml: automation 'x': {field}: ") for p in problems), problems


def test_templates_are_accepted_for_typed_props_but_bad_literals_are_not(tmp_path):
    action = "{ name: b, type: delay, operator: wait, props: { ms: '{{trigger.data.ms}}' } }"
    (tmp_path / "ok.yaml").write_text(
        MINIMAL.format(name="x", trigger="{ type: manual }") + f"      - {action}\n")
    assert load_catalog(tmp_path, REGISTRY).get("x").actions[1].props["ms"] == "{{trigger.data.ms}}"


def test_unreadable_yaml_and_wrong_shapes_are_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("automations: [\n")
    (tmp_path / "b.yml").write_text("something: else\n")
    (tmp_path / "c.yaml").write_text("automations:\n  - just-a-string\n")
    with pytest.raises(DefinitionError) as raised:
        load_catalog(tmp_path, REGISTRY)
    problems = raised.value.problems
    assert problems[0].startswith("a.yaml: not readable YAML")
    assert problems[1] == "b.yml: automations: a list of automations is required"
    assert problems[2].startswith("c.yaml: automations[0]: automation: ")


def test_failure_handler_watching_an_unknown_automation_is_an_error(tmp_path):
    text = MINIMAL.format(name="x", trigger="{ type: automation-failure, automations: [ghost] }")
    assert problems_of(tmp_path, text) == [
        "bad.yaml: automation 'x': trigger.automations: unknown automation 'ghost'"]


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DefinitionError, match="no such file"):
        load_catalog(tmp_path / "nope", REGISTRY)


def test_catalog_lookups():
    catalog = load_catalog(FIXTURES / "good", REGISTRY)
    with pytest.raises(AutomationNotFound):
        catalog.get("ghost")
    assert catalog.cron_automations() == []  # the only cron automation is disabled
    handlers = catalog.failure_handlers("signup-webhook", RunStatus.EXHAUSTED)
    assert [h.name for h in handlers] == ["on-failure"]
    assert catalog.failure_handlers("nightly-report", RunStatus.FAILED) == []
    assert catalog.failure_handlers("signup-webhook", RunStatus.TIMED_OUT) == []


def test_automation_round_trips_through_its_json_snapshot():
    for automation in load_catalog(FIXTURES / "good", REGISTRY).all():
        snapshot = automation.to_dict()
        assert snapshot["actions"][0]["continueOnError"] is False
        assert Automation.from_dict(snapshot) == automation


def test_cron_trigger_schedule_respects_the_time_zone():
    trigger = CronTrigger(type="cron", expression="30 2 * * *", timezone="Europe/Paris")
    after = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    assert trigger.next_after(after).astimezone(timezone.utc) == datetime(
        2026, 1, 11, 1, 30, tzinfo=timezone.utc)
    assert trigger.is_due(datetime(2026, 1, 11, 1, 30, 20, tzinfo=timezone.utc))
    assert not trigger.is_due(datetime(2026, 1, 11, 2, 30, tzinfo=timezone.utc))


def test_webhook_rate_limits_default_to_600_a_minute_with_a_burst_of_100(tmp_path):
    text = MINIMAL.format(name="x", trigger="{ type: webhook }") + """\
  - name: y
    trigger: { type: webhook, rateLimit: 30 }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
  - name: z
    trigger: { type: webhook, rateLimit: { perMinute: 6000, burst: 5 } }
    actions:
      - { name: a, type: data, operator: set, props: { value: 1 } }
"""
    (tmp_path / "ok.yaml").write_text(text)
    catalog = load_catalog(tmp_path, REGISTRY)

    limits = {a.name: a.trigger.effective_rate_limit.allowance for a in catalog.all()}
    assert limits["x"] == Allowance(interval_us=100_000, burst=100)
    assert limits["y"] == Allowance(interval_us=2_000_000, burst=30)  # a minute's worth
    assert limits["z"] == Allowance(interval_us=10_000, burst=5)
    assert "rateLimit" not in catalog.get("x").to_dict()["trigger"]
